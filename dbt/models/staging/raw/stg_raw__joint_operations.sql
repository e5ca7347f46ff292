-- Joint operations of a border pair's shared platform (五联); side a is the feed's jurisdiction, side b its
-- partner (for Pinghu–Jinshan: a = 平湖 330482, b = 金山 310116).
with

source as (

    select * from {{ source('raw', 'joint_operation') }}

),

renamed as (

    select
        -- ids
        record_id,
        source_record_id as operation_id,
        jurisdiction_code,
        source_feed,

        -- operation: the mechanism as the platform writes it (联查/联管/联调/联防/联宣)
        trim(source_mechanism) as source_mechanism,
        operation_date,
        location,
        outcome,
        linked_record_ids,

        -- the two sides
        jurisdiction_a,
        nullif(trim(town_a), '') as town_a,
        units_a,
        jurisdiction_b,
        nullif(trim(town_b), '') as town_b,
        units_b,

        -- lineage
        source_file,
        source_row,
        batch_id,
        load_date,
        ingested_at

    from source

)

select * from renamed
