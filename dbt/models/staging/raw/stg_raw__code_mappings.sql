-- Every feed's source codes with their harmonised value, from the `code_mapping` of each feed YAML under
-- connectors/ (registered by pingan/warehouse_inputs.py): onboarding a feed with new codes edits no model.
with

source as (

    select * from {{ source('raw', 'code_mappings') }}

),

renamed as (

    select
        source_feed,
        entity,
        harmonised_column,
        source_code,
        source_label,
        harmonised_value
    from source

)

select * from renamed
