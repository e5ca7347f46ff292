-- Whether any feed of an entity and jurisdiction is stale for this build; KPI marts join it to flag rows
-- built from a late feed (is_source_stale) instead of the build stopping for it.
with

feeds as (

    select * from {{ ref('stg_raw__feeds') }}

),

final as (

    select
        entity,
        jurisdiction_code,
        bool_or(is_stale) as is_stale
    from feeds
    group by 1, 2

)

select * from final
