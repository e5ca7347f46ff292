-- Fire safety per local month, jurisdiction and town: hazards found vs rectified in the month's
-- inspections (消防检查), and the month's IoT alarms (消防物联网告警): true-alarm ratio and handling time
-- (raised → handled). Open hazards past their rectification deadline are counted as of the build.
-- Spark: partitioned by month, the same months rewritten (macros/cross_db/month_marts_on_spark.sql).
-- Incremental by month (macros/period_rebuild.sql): the months tonight's inspections and alarms
-- touch, and those of open hazards whose deadline passed since the last build; percentiles do not merge,
-- so a month is recomputed whole.
-- depends_on: {{ ref('stg_raw__feeds') }}
-- depends_on: {{ source('raw', 'touched_keys') }}
-- depends_on: {{ source('raw', 'touched_months') }}
{{
    config(
        materialized=month_mart_materialization(),
        incremental_strategy=month_mart_strategy(),
        partition_by=month_mart_partitions('activity_month'),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_months('activity_month', rebuilt_months(fire_safety_months(), 'activity_month', ['fire_inspection', 'fire_alarm'])) }}",
        post_hook=[
            "{{ refresh_source_staleness(['fire_inspection', 'fire_alarm']) }}",
            "{{ drop_emptied_months('activity_month') }}",
        ],
    )
}}
{%- set months = rebuilt_months(fire_safety_months(), 'activity_month', ['fire_inspection', 'fire_alarm']) %}

with

inspections as (

    select
        {{ month_of('inspected_on') }} as activity_month,
        jurisdiction_code,
        town,
        count(*) as inspections,
        sum(hazards_found) as hazards_found,
        sum(hazards_rectified) as hazards_rectified,
        sum(open_hazards) as open_hazards,
        sum(case
            when rectification_deadline <= {{ as_of_date() }} then open_hazards else 0
        end) as overdue_open_hazards
    from {{ ref('fct_fire_inspections') }}
    {% if is_incremental() %}
        where {{ in_months('inspected_on', months) }}
    {% endif %}
    group by 1, 2, 3

),

alarms as (

    select
        {{ local_month('raised_at') }} as activity_month,
        jurisdiction_code,
        town,
        count(*) as alarms,
        sum(case when is_true_alarm then 1 else 0 end) as true_alarms,
        count(raised_to_handled_seconds) as handled_alarms,
        {{ percentile_cont('raised_to_handled_seconds', 0.5) }} / 60.0 as p50_alarm_handling_minutes,
        {{ percentile_cont('raised_to_handled_seconds', 0.9) }} / 60.0 as p90_alarm_handling_minutes
    from {{ ref('fct_fire_alarms') }}
    {% if is_incremental() %}
        where {{ in_months('raised_on', months) }}
    {% endif %}
    group by 1, 2, 3

),

grain as (

    select
        activity_month,
        jurisdiction_code,
        town
    from inspections
    union
    select
        activity_month,
        jurisdiction_code,
        town
    from alarms

),

staleness as (

    {{ source_staleness(['fire_inspection', 'fire_alarm']) }}

),

final as (

    select
        grain.activity_month,
        grain.jurisdiction_code,
        grain.town,
        cast(coalesce(inspections.inspections, 0) as bigint) as inspections,
        cast(coalesce(inspections.hazards_found, 0) as bigint) as hazards_found,
        cast(coalesce(inspections.hazards_rectified, 0) as bigint) as hazards_rectified,
        cast(coalesce(inspections.open_hazards, 0) as bigint) as open_hazards,
        cast(coalesce(inspections.overdue_open_hazards, 0) as bigint) as overdue_open_hazards,
        -- rectified / found; null when nothing was found
        cast(inspections.hazards_rectified as double) / nullif(inspections.hazards_found, 0)
            as rectification_rate,
        cast(coalesce(alarms.alarms, 0) as bigint) as alarms,
        cast(coalesce(alarms.true_alarms, 0) as bigint) as true_alarms,
        cast(alarms.true_alarms as double) / nullif(alarms.alarms, 0) as true_alarm_ratio,
        cast(coalesce(alarms.handled_alarms, 0) as bigint) as handled_alarms,
        cast(alarms.p50_alarm_handling_minutes as double) as p50_alarm_handling_minutes,
        cast(alarms.p90_alarm_handling_minutes as double) as p90_alarm_handling_minutes,
        coalesce(staleness.is_source_stale, false) as is_source_stale
    from grain
    left join inspections
        on
            grain.activity_month = inspections.activity_month
            and grain.jurisdiction_code = inspections.jurisdiction_code
            and grain.town is not distinct from inspections.town
    left join alarms
        on
            grain.activity_month = alarms.activity_month
            and grain.jurisdiction_code = alarms.jurisdiction_code
            and grain.town is not distinct from alarms.town
    left join staleness
        on grain.jurisdiction_code = staleness.jurisdiction_code

)

select * from final
