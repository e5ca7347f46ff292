-- Fire safety inspections (消防检查) of units by USCC, re-delivered whenever they are updated.
with

source as (

    select * from {{ source('raw', 'fire_inspection') }}

),

renamed as (

    select
        -- ids
        record_id,
        source_record_id as inspection_id,
        upper(trim(uscc)) as uscc,
        jurisdiction_code,
        source_feed,

        -- inspection
        unit_name,
        inspected_on,
        hazards_found,
        hazards_rectified,
        rectification_deadline,
        nullif(trim(town), '') as town,
        inspector_unit,
        updated_at,

        -- lineage
        source_file,
        source_row,
        batch_id,
        load_date,
        ingested_at

    from source

)

select * from renamed
