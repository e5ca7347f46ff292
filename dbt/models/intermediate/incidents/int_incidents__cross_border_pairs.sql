-- Cross-border double reports: the same event reported by both sides of a border. Two incidents are one
-- event when they are of different jurisdictions, both in border towns, of the same harmonised category,
-- at most `double_report_radius_m` metres apart (default 500) and reported at most
-- `double_report_window_minutes` minutes apart (default 30). The earlier report is the original; the later
-- one (on a tie, the greater record_id) is the double report, which the KPI marts leave out.
-- Incremental by incident on DuckDB: whether two incidents pair depends on those two alone, so a night
-- deletes the pairs of tonight's incidents (raw.touched_keys) and pairs them again with the incidents
-- reported within a day of them; Spark builds the table whole (mart_materialization()).
-- depends_on: {{ source('raw', 'touched_keys') }}
{{
    config(
        materialized=mart_materialization(),
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_pairs_of_touched_incidents() }}",
    )
}}

{%- set radius_m = var('double_report_radius_m', 500) %}
{%- set window_minutes = var('double_report_window_minutes', 30) %}
-- 1 degree of latitude is 111.2 km: a cheap box around each point before the exact distance
{%- set box_deg = radius_m / 111000.0 %}
-- Reports fall in time buckets as long as the window: a pair is in the same or the next bucket, so the join
-- is an equality (category, bucket) and grows with the data, not with its square.

with

border_incidents as (

    select
        record_id,
        jurisdiction_code,
        category,
        reported_at,
        latitude,
        longitude,
        {%- set minutes = dbt.datediff("cast('2000-01-01' as date)", 'reported_at', 'minute') %}
        cast(floor({{ minutes }} / {{ window_minutes }}) as bigint) as time_bucket
    from {{ ref('fct_incidents') }}
    where
        is_border_town
        and category is not null
        and latitude is not null
        and longitude is not null
    {% if is_incremental() %}
        -- tonight's incidents and those reported within a day of them (the window is minutes)
        and reported_on in (
            select cast(unnest(generate_series(reported_on - 1, reported_on + 1, interval 1 day)) as date)
            from {{ ref('fct_incidents') }}
            where record_id in ({{ touched_keys('incident') }})
        )
    {% endif %}

),

original_buckets as (

    -- each report looks for later reports in its own bucket and the next one
    select
        *,
        time_bucket as join_bucket
    from border_incidents
    union all
    select
        *,
        time_bucket + 1 as join_bucket
    from border_incidents

),

candidates as (

    select
        original.record_id as original_record_id,
        original.jurisdiction_code as original_jurisdiction_code,
        later.record_id as double_report_record_id,
        later.jurisdiction_code as double_report_jurisdiction_code,
        original.category,
        {{ distance_m('original.latitude', 'original.longitude', 'later.latitude', 'later.longitude') }}
            as distance_m,
        {{ seconds_between('original.reported_at', 'later.reported_at') }} as seconds_apart
    from original_buckets as original
    inner join border_incidents as later
        on
            original.category = later.category
            and original.join_bucket = later.time_bucket
            and original.jurisdiction_code <> later.jurisdiction_code
            and original.reported_at <= later.reported_at
            and later.reported_at <= {{ dbt.dateadd('minute', window_minutes, 'original.reported_at') }}
            and abs(later.latitude - original.latitude) <= {{ box_deg }}
            and abs(later.longitude - original.longitude) <= {{ box_deg * 1.2 }}
    where
        later.reported_at > original.reported_at
        or later.record_id > original.record_id

),

final as (

    select
        original_record_id || '|' || double_report_record_id as pair_id,
        original_record_id,
        original_jurisdiction_code,
        double_report_record_id,
        double_report_jurisdiction_code,
        category,
        distance_m,
        seconds_apart
    from candidates
    where
        distance_m <= {{ radius_m }}
    {% if is_incremental() %}
        and (
            original_record_id in ({{ touched_keys('incident') }})
            or double_report_record_id in ({{ touched_keys('incident') }})
        )
    {% endif %}

)

select * from final
