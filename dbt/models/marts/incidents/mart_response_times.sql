-- Dispatch → arrival (派警 → 到达) per local month, jurisdiction, town and harmonised category: median and
-- 90th percentile in seconds, and the share of arrivals within 5 minutes ("5 minutes to arrive"). Only
-- incidents with both times count toward the percentiles and the share; a cross-border double report
-- counts once.
-- Spark: partitioned by month, the same months rewritten (macros/cross_db/month_marts_on_spark.sql).
-- Incremental by month (macros/period_rebuild.sql): percentiles do not merge, so a touched month
-- is recomputed whole (delete+insert by month), never patched row by row.
-- depends_on: {{ ref('stg_raw__feeds') }}
-- depends_on: {{ ref('fct_incidents') }}
-- depends_on: {{ source('raw', 'touched_keys') }}
-- depends_on: {{ source('raw', 'touched_months') }}
{{
    config(
        materialized=month_mart_materialization(),
        incremental_strategy=month_mart_strategy(),
        partition_by=month_mart_partitions('incident_month'),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_months('incident_month', rebuilt_months(incident_months(), 'incident_month', ['incident'])) }}",
        post_hook=[
            "{{ refresh_source_staleness(['incident']) }}",
            "{{ drop_emptied_months('incident_month') }}",
        ],
    )
}}
{%- set months = rebuilt_months(incident_months(), 'incident_month', ['incident']) %}

with

incidents as (

    select
        {{ local_month('reported_at') }} as incident_month,
        jurisdiction_code,
        town,
        category,
        {{ seconds_between('dispatched_at', 'arrived_at') }} as dispatch_to_arrival_seconds
    from {{ ref('int_incidents__double_reports_flagged') }}
    where not is_double_report
    {% if is_incremental() %}
        and {{ in_months('reported_on', months) }}
    {% endif %}

),

monthly as (

    select
        incident_month,
        jurisdiction_code,
        town,
        category,
        count(*) as incidents,
        count(dispatch_to_arrival_seconds) as incidents_with_arrival,
        {{ percentile_cont('dispatch_to_arrival_seconds', 0.5) }} as p50_dispatch_to_arrival_seconds,
        {{ percentile_cont('dispatch_to_arrival_seconds', 0.9) }} as p90_dispatch_to_arrival_seconds,
        sum(case when dispatch_to_arrival_seconds <= 300 then 1 else 0 end) as arrivals_within_5_min
    from incidents
    group by 1, 2, 3, 4

),

staleness as (

    {{ source_staleness(['incident']) }}

),

final as (

    select
        monthly.incident_month,
        monthly.jurisdiction_code,
        monthly.town,
        monthly.category,
        cast(monthly.incidents as bigint) as incidents,
        cast(monthly.incidents_with_arrival as bigint) as incidents_with_arrival,
        monthly.p50_dispatch_to_arrival_seconds,
        monthly.p90_dispatch_to_arrival_seconds,
        cast(monthly.arrivals_within_5_min as bigint) as arrivals_within_5_min,
        -- share of timed arrivals within 300 s; null when no arrival was timed
        cast(monthly.arrivals_within_5_min as double) / nullif(monthly.incidents_with_arrival, 0)
            as share_within_5_min,
        coalesce(staleness.is_source_stale, false) as is_source_stale
    from monthly
    left join staleness
        on monthly.jurisdiction_code = staleness.jurisdiction_code

)

select * from final
