-- Cross-border activity in long format: one row per local month × activity_kind × jurisdiction × subject.
--   joint_operation       joint operations (五联) per harmonised mechanism; an operation counts once for
--                         each of its two sides' jurisdictions (summing over jurisdictions counts it twice)
--   border_town_incident  incidents in each border town, on every side of the borders
--   checkpoint            incidents within `checkpoint_radius_m` metres (default 500) of a checkpoint's
--                         position, from any jurisdiction; jurisdiction_code is the checkpoint's. An
--                         incident near two checkpoints counts at both.
-- Incidents count once: the later copy of a cross-border double report is left out. No PII.
{%- set radius_m = var('checkpoint_radius_m', 500) %}
{%- set box_deg = radius_m / 111000.0 %}
-- Incidents and checkpoints meet through grid cells at least as wide as the search box: a checkpoint looks
-- in its cell and the 8 around it, so the join is an equality and grows with the incidents, not with
-- incidents × checkpoints.
{%- set cell_deg = box_deg * 1.2 %}

with

operations as (

    select * from {{ ref('fct_joint_operations') }}
    where mechanism is not null

),

operation_sides as (

    select
        operation_date,
        mechanism,
        source_mechanism,
        jurisdiction_code as feed_jurisdiction_code,
        jurisdiction_a as side_jurisdiction_code
    from operations
    union all
    select
        operation_date,
        mechanism,
        source_mechanism,
        jurisdiction_code as feed_jurisdiction_code,
        jurisdiction_b as side_jurisdiction_code
    from operations

),

joint_operations as (

    select
        {{ month_of('operation_date') }} as activity_month,
        'joint_operation' as activity_kind,
        side_jurisdiction_code as jurisdiction_code,
        mechanism as subject,
        min(source_mechanism) as subject_name,
        count(*) as activity_count,
        min(feed_jurisdiction_code) as feed_jurisdiction_code
    from operation_sides
    where side_jurisdiction_code is not null
    group by 1, 2, 3, 4

),

incidents as (

    select * from {{ ref('int_incidents__double_reports_flagged') }}
    where not is_double_report

),

border_town_incidents as (

    select
        {{ local_month('reported_at') }} as activity_month,
        'border_town_incident' as activity_kind,
        jurisdiction_code,
        town as subject,
        town as subject_name,
        count(*) as activity_count,
        jurisdiction_code as feed_jurisdiction_code
    from incidents
    where is_border_town and town is not null
    group by 1, 2, 3, 4, 5

),

checkpoints as (

    select * from {{ ref('dim_checkpoint') }}

),

cell_steps as (

    -- a checkpoint looks in its own cell and the eight around it
    select -1 as step
    union all
    select 0 as step
    union all
    select 1 as step

),

checkpoint_cells as (

    select
        checkpoints.*,
        cast(floor(checkpoints.lat / {{ cell_deg }}) as bigint) + lat_steps.step as lat_cell,
        cast(floor(checkpoints.lon / {{ cell_deg }}) as bigint) + lon_steps.step as lon_cell
    from checkpoints
    cross join cell_steps as lat_steps
    cross join cell_steps as lon_steps

),

located_incidents as (

    select
        incidents.*,
        cast(floor(incidents.latitude / {{ cell_deg }}) as bigint) as lat_cell,
        cast(floor(incidents.longitude / {{ cell_deg }}) as bigint) as lon_cell
    from incidents
    where incidents.latitude is not null and incidents.longitude is not null

),

checkpoint_incidents as (

    select
        {{ local_month('incidents.reported_at') }} as activity_month,
        'checkpoint' as activity_kind,
        checkpoints.jurisdiction_code,
        checkpoints.checkpoint_id as subject,
        checkpoints.name as subject_name,
        count(*) as activity_count,
        -- the radius crosses borders: any incident feed's staleness applies (see final)
        cast(null as {{ dbt.type_string() }}) as feed_jurisdiction_code
    from checkpoint_cells as checkpoints
    inner join located_incidents as incidents
        on
            checkpoints.lat_cell = incidents.lat_cell
            and checkpoints.lon_cell = incidents.lon_cell
    where
        {{ distance_m('checkpoints.lat', 'checkpoints.lon', 'incidents.latitude', 'incidents.longitude') }}
        <= {{ radius_m }}
    group by 1, 2, 3, 4, 5

),

activity as (

    select * from joint_operations
    union all
    select * from border_town_incidents
    union all
    select * from checkpoint_incidents

),

operation_staleness as (

    {{ source_staleness(['joint_operation']) }}

),

incident_staleness as (

    {{ source_staleness(['incident']) }}

),

any_incident_staleness as (

    select bool_or(is_source_stale) as is_source_stale from incident_staleness

),

final as (

    select
        activity.activity_month,
        activity.activity_kind,
        activity.jurisdiction_code,
        activity.subject,
        activity.subject_name,
        cast(activity.activity_count as bigint) as activity_count,
        coalesce(case activity.activity_kind
            when 'joint_operation' then operation_staleness.is_source_stale
            when 'border_town_incident' then incident_staleness.is_source_stale
            else any_incident_staleness.is_source_stale
        end, false) as is_source_stale
    from activity
    left join operation_staleness
        on activity.feed_jurisdiction_code = operation_staleness.jurisdiction_code
    left join incident_staleness
        on activity.feed_jurisdiction_code = incident_staleness.jurisdiction_code
    cross join any_incident_staleness

)

select * from final
