-- One row per feed spec with its freshness for this build's logical date (pingan/warehouse_inputs.py).
with

source as (

    select * from {{ source('raw', 'feeds') }}

),

renamed as (

    select
        -- feed
        source_feed,
        entity,
        jurisdiction_code,
        jurisdiction_name,
        province_name,
        domain,
        description,

        -- freshness
        latest_load_date,
        build_date,
        lag_days,
        max_lag_days,
        deadline_at,
        is_stale

    from source

)

select * from renamed
