-- Closed-loop performance of grid events per local month of discovery (fct_grid_events.discovered_on; an
-- event whose discovery stage never reached the lake counts in the month of its earliest stage),
-- jurisdiction and harmonised event type: closure rate (办结率 = closed / discovered), overdue items
-- (closed late or open past the deadline of ref_grid_event_deadlines), and the median hours per stage.
-- Spark: partitioned by month, the same months rewritten (macros/cross_db/month_marts_on_spark.sql).
-- Incremental by month (macros/period_rebuild.sql): the months of the events tonight's stage rows
-- touch, and of the open events whose deadline passed tonight (an overdue count changes without a new row).
-- depends_on: {{ ref('stg_raw__feeds') }}
-- depends_on: {{ source('raw', 'touched_keys') }}
-- depends_on: {{ source('raw', 'touched_months') }}
{{
    config(
        materialized=month_mart_materialization(),
        incremental_strategy=month_mart_strategy(),
        partition_by=month_mart_partitions('discovered_month'),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_months('discovered_month', rebuilt_months(grid_event_months(), 'discovered_month', ['grid_event_stage'])) }}",
        post_hook=[
            "{{ refresh_source_staleness(['grid_event_stage']) }}",
            "{{ drop_emptied_months('discovered_month') }}",
        ],
    )
}}
{%- set months = rebuilt_months(grid_event_months(), 'discovered_month', ['grid_event_stage']) %}

with

events as (

    select * from {{ ref('fct_grid_events') }}
    {% if is_incremental() %}
        where {{ in_months('discovered_on', months) }}
    {% endif %}

),

monthly as (

    select
        {{ month_of('discovered_on') }} as discovered_month,
        jurisdiction_code,
        event_type,
        count(*) as events,
        sum(case when is_closed then 1 else 0 end) as closed_events,
        sum(case when is_overdue then 1 else 0 end) as overdue_events,
        sum(case when is_overdue and not is_closed then 1 else 0 end) as open_overdue_events,
        sum(case when is_cross_border then 1 else 0 end) as cross_border_events,
        sum(case when has_discovery_stage then 0 else 1 end) as events_without_discovery_stage,
        {{ percentile_cont('dispatch_stage_seconds', 0.5) }} / 3600.0 as p50_dispatch_stage_hours,
        {{ percentile_cont('verify_stage_seconds', 0.5) }} / 3600.0 as p50_verify_stage_hours,
        {{ percentile_cont('handle_stage_seconds', 0.5) }} / 3600.0 as p50_handle_stage_hours,
        {{ percentile_cont('close_stage_seconds', 0.5) }} / 3600.0 as p50_close_stage_hours,
        {{ percentile_cont('feedback_stage_seconds', 0.5) }} / 3600.0 as p50_feedback_stage_hours,
        {{ percentile_cont('discovered_to_closed_seconds', 0.5) }} / 3600.0 as p50_discovered_to_closed_hours
    from events
    group by 1, 2, 3

),

staleness as (

    {{ source_staleness(['grid_event_stage']) }}

),

final as (

    select
        monthly.discovered_month,
        monthly.jurisdiction_code,
        monthly.event_type,
        cast(monthly.events as bigint) as events,
        cast(monthly.closed_events as bigint) as closed_events,
        cast(monthly.closed_events as double) / nullif(monthly.events, 0) as closure_rate,
        cast(monthly.overdue_events as bigint) as overdue_events,
        cast(monthly.open_overdue_events as bigint) as open_overdue_events,
        cast(monthly.cross_border_events as bigint) as cross_border_events,
        cast(monthly.events_without_discovery_stage as bigint) as events_without_discovery_stage,
        cast(monthly.p50_dispatch_stage_hours as double) as p50_dispatch_stage_hours,
        cast(monthly.p50_verify_stage_hours as double) as p50_verify_stage_hours,
        cast(monthly.p50_handle_stage_hours as double) as p50_handle_stage_hours,
        cast(monthly.p50_close_stage_hours as double) as p50_close_stage_hours,
        cast(monthly.p50_feedback_stage_hours as double) as p50_feedback_stage_hours,
        cast(monthly.p50_discovered_to_closed_hours as double) as p50_discovered_to_closed_hours,
        coalesce(staleness.is_source_stale, false) as is_source_stale
    from monthly
    left join staleness
        on monthly.jurisdiction_code = staleness.jurisdiction_code

)

select * from final
