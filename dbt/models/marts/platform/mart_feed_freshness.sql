-- One row per feed: its latest committed load date against this build's logical date, and whether it is
-- stale (more than its YAML's freshness.max_lag_days behind). A late feed does not stop the build; this
-- says which numbers it leaves behind.
with

feeds as (

    select * from {{ ref('stg_raw__feeds') }}

),

final as (

    select
        source_feed,
        entity,
        jurisdiction_code,
        domain,
        latest_load_date,
        build_date,
        lag_days,
        max_lag_days,
        deadline_at,
        is_stale
    from feeds

)

select * from final
