-- 嘉善县 网格事件: the XLSX export melted to one row per stage (上报→会商→处置→反馈→长效跟踪).
with

source as (

    select * from {{ source('raw', 'grid_event_stage') }}
    where source_feed = 'jiashan_grid_events'

),

renamed as (

    select
        -- ids
        record_id,
        event_id,
        jurisdiction_code,
        source_feed,

        -- stage of the closed loop and when it was reached
        -- Jiashan has no separate verification stage; 长效跟踪 arrives as follow_up
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
