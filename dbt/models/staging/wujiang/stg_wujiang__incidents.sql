-- 吴江区 incidents: JSON Lines from the partner's landing bucket, with its own category codes.
with

source as (

    select * from {{ source('raw', 'incident') }}
    where source_feed = 'wujiang_incidents'

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
        -- Wujiang sends UTC; the instants are the same, rendered in Asia/Shanghai
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
