{#
  The staging select of one incident feed. The raw zone is already canonical, so every incident feed
  stages the same way; what differs per feed (formats, zones, codes) was handled by its connector spec.
#}
{% macro staged_incidents(feed) %}
with

source as (

    select * from {{ source('raw', 'incident') }}
    where source_feed = '{{ feed }}'

),

renamed as (

    select
        -- ids
        record_id,
        source_record_id,
        jurisdiction_code,
        source_feed,

        -- category: the source's own code, harmonised in int_incidents__unioned
        source_category_code,

        -- timestamps
        reported_at,
        dispatched_at,
        arrived_at,
        closed_at,

        -- place
        nullif(trim(town), '') as town,
        nullif(trim(grid_id), '') as grid_id,
        latitude,
        longitude,
        address,

        -- handling
        handling_unit,
        disposition,

        -- pii
        caller_phone,
        involved_id_numbers,

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
