-- One row per grid event (dispute or hazard) with a timestamp per stage of the closed loop
-- 发现→派单→核查→处置→结案→反馈 (Jiashan: 上报→会商→处置→反馈→长效跟踪), the time each stage took, and
-- whether the event is closed and overdue against its type's deadline (seed ref_grid_event_deadlines).
-- Incremental per batch (the lead's pattern): a night rebuilds the events with a stage row in a new or
-- withdrawn batch (or whose type mapping changed), plus the open events whose deadline has passed since
-- they were stored, so is_overdue never goes stale between full refreshes.
{{
    config(
        materialized=fact_materialization(spark_incremental=false),
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="{{ drop_rows_of_removed_batches() }}",
    )
}}

with

versions as (

    select * from {{ ref('int_grid_event_stages__versions') }}
    where {{ affected_keys('int_grid_event_stages__versions', 'event_id', 'grid_event_stage',
                           code_column='source_event_type', harmonised_column='event_type',
                           new_columns=['discovered_on']) }}
    {% if is_incremental() %}
        -- open events whose deadline has passed since they were stored become overdue
        or event_id in (
            select event_id from {{ this }}
            where not is_closed and not is_overdue and deadline_at <= {{ as_of_instant() }}
        )
    {% endif %}

),

latest_stages as (

    -- the latest delivery of each stage of an event wins: later logical day first, then later load
    select * from versions
    {{ latest_delivery('event_id, stage') }}

),

latest_row as (

    -- the event's descriptive columns and lineage come from its most recently delivered stage row
    select * from latest_stages
    {{ latest_delivery('event_id') }}

),

stage_times as (

    select
        event_id,
        max(case when stage = 'discovered' then stage_at end) as discovered_at,
        max(case when stage = 'dispatched' then stage_at end) as dispatched_at,
        max(case when stage = 'verified' then stage_at end) as verified_at,
        max(case when stage = 'handled' then stage_at end) as handled_at,
        max(case when stage = 'closed' then stage_at end) as closed_at,
        max(case when stage = 'feedback' then stage_at end) as feedback_at,
        max(case when stage = 'follow_up' then stage_at end) as follow_up_at,
        -- an event discovered before the lake's first day arrives with later stages only
        min(stage_at) as first_seen_at,
        -- one side flagging the event as cross-border is enough
        bool_or(coalesce(is_cross_border, false)) as is_cross_border
    from latest_stages
    group by event_id

),

event_types as (

    select
        source_feed,
        source_code as source_event_type,
        harmonised_value as event_type
    from {{ ref('stg_raw__code_mappings') }}
    where entity = 'grid_event_stage'

),

deadlines as (

    select
        event_type,
        deadline_hours
    from {{ ref('ref_grid_event_deadlines') }}

),

towns as (

    select
        jurisdiction_code,
        town_name,
        is_border_town
    from {{ ref('dim_town') }}

),

joined as (

    select
        latest_row.event_id,
        latest_row.jurisdiction_code,
        latest_row.source_feed,
        latest_row.source_event_type,
        -- an unmapped code stays null (the quality gate rejects those rows before they get here)
        event_types.event_type,
        latest_row.grid_id,
        latest_row.town,
        coalesce(towns.is_border_town, false) as is_border_town,
        stage_times.is_cross_border,
        stage_times.discovered_at,
        stage_times.dispatched_at,
        stage_times.verified_at,
        stage_times.handled_at,
        stage_times.closed_at,
        stage_times.feedback_at,
        stage_times.follow_up_at,
        stage_times.first_seen_at,
        deadlines.deadline_hours,
        latest_row.parties,
        latest_row.address,
        latest_row.handling_unit,
        latest_row.source_file,
        latest_row.batch_id,
        latest_row.load_date,
        latest_row.ingested_at
    from latest_row
    inner join stage_times
        on latest_row.event_id = stage_times.event_id
    left join event_types
        on
            latest_row.source_feed = event_types.source_feed
            and latest_row.source_event_type = event_types.source_event_type
    left join deadlines
        on event_types.event_type = deadlines.event_type
    left join towns
        on
            latest_row.jurisdiction_code = towns.jurisdiction_code
            and latest_row.town = towns.town_name

),

with_deadline as (

    select
        joined.*,
        cast({{ dbt.dateadd('hour', 'deadline_hours', 'discovered_at') }} as {{ type_instant() }})
            as deadline_at
    from joined

),

final as (

    select
        -- ids
        event_id,
        jurisdiction_code,
        source_feed,

        -- event
        source_event_type,
        event_type,
        grid_id,
        town,
        is_border_town,
        is_cross_border,

        -- closed-loop stages
        discovered_at,
        dispatched_at,
        verified_at,
        handled_at,
        closed_at,
        feedback_at,
        follow_up_at,
        first_seen_at,

        -- the event's period: its local day of discovery (Asia/Shanghai, whatever the session zone), or,
        -- when the discovery stage never reached the lake, the local day of its earliest stage delivered
        {{ local_date('coalesce(discovered_at, first_seen_at)') }} as discovered_on,
        discovered_at is not null as has_discovery_stage,

        -- time each stage took: from the latest earlier stage the event reached (Jiashan has no 核查)
        {{ seconds_between('discovered_at', 'dispatched_at') }} as dispatch_stage_seconds,
        {{ seconds_between('dispatched_at', 'verified_at') }} as verify_stage_seconds,
        {{ seconds_between('coalesce(verified_at, dispatched_at, discovered_at)', 'handled_at') }}
            as handle_stage_seconds,
        {{ seconds_between('coalesce(handled_at, verified_at, dispatched_at, discovered_at)', 'closed_at') }}
            as close_stage_seconds,
        {{ seconds_between('closed_at', 'feedback_at') }} as feedback_stage_seconds,
        {{ seconds_between('coalesce(feedback_at, closed_at)', 'follow_up_at') }} as follow_up_stage_seconds,
        {{ seconds_between('discovered_at', 'closed_at') }} as discovered_to_closed_seconds,

        -- closure (办结) and the deadline of the event's type
        closed_at is not null as is_closed,
        deadline_hours,
        deadline_at,
        case
            -- no deadline without a known type and a discovery time
            when deadline_at is null then false
            when closed_at is not null then closed_at > deadline_at
            else deadline_at < {{ as_of_instant() }}
        end as is_overdue,

        -- handling
        address,
        handling_unit,

        -- pii (pseudonymised or dropped by every partner share)
        parties,

        -- lineage
        source_file,
        batch_id,
        load_date,
        ingested_at

    from with_deadline

),

hashed as (

    -- the share publication's change marker (macros/cross_db/row_hash.sql)
    select
        final.*,
        {{ row_hash('final') }} as row_hash
    from final

)

select * from hashed
