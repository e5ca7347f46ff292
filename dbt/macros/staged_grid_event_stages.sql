{#
  The staging select of one grid-event feed, one row per stage reached (see staged_incidents for why
  one macro serves every feed).
#}
{% macro staged_grid_event_stages(feed) %}
with

source as (

    select * from {{ source('raw', 'grid_event_stage') }}
    where source_feed = '{{ feed }}'

),

renamed as (

    select
        -- ids
        record_id,
        event_id,
        jurisdiction_code,
        source_feed,

        -- stage of the closed loop and when it was reached
        stage,
        stage_at,

        -- event
        source_event_type,
        nullif(trim(grid_id), '') as grid_id,
        nullif(trim(town), '') as town,
        coalesce(is_cross_border, false) as is_cross_border,
        address,
        handling_unit,

        -- pii
        parties,

        -- lineage
        source_file,
        source_row,
        batch_id,
        load_date,
        ingested_at

    from source

)

select * from renamed
{% endmacro %}
