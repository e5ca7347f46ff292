-- One row per stage a grid event (dispute or hazard) reached, from every grid feed: Qingpu's JSON Lines of
-- stage changes and Jiashan's XLSX (one column per stage, melted by its connector).
with

source as (

    select * from {{ source('raw', 'grid_event_stage') }}

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

        -- event: the source's own type code, harmonised through the feed's code_mapping
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
