-- 青浦区 网格事件/矛盾纠纷: one JSON line per stage change (发现→派单→核查→处置→结案→反馈).
with

source as (

    select * from {{ source('raw', 'grid_event_stage') }}
    where source_feed = 'qingpu_grid_events'

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
