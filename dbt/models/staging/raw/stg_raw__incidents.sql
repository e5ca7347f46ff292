-- Incident calls of every feed (110 and partner incident systems), as committed in the raw zone. The
-- connectors already made them canonical (formats, zones, ids); staging only trims and groups columns.
-- Reads the batches this build has not yet mirrored (all of them on a full refresh).
with

source as (

    select * from {{ source('raw', 'incident') }}

),

renamed as (

    select
        -- ids
        record_id,
        source_record_id,
        jurisdiction_code,
        source_feed,

        -- category: the source's own code, harmonised in int_incidents__harmonised
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
