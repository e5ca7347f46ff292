-- Fire IoT alarms (消防物联网告警), re-delivered as they are confirmed and handled.
with

source as (

    select * from {{ source('raw', 'fire_alarm') }}

),

renamed as (

    select
        -- ids
        record_id,
        source_record_id as alarm_id,
        device_id,
        upper(trim(uscc)) as uscc,
        jurisdiction_code,
        source_feed,

        -- alarm: the source's own type code, harmonised through the feed's code_mapping
        source_alarm_type,
        is_true_alarm,
        nullif(trim(town), '') as town,

        -- timestamps
        raised_at,
        confirmed_at,
        handled_at,
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
