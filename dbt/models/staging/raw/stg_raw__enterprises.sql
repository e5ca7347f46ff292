-- Successive states of each enterprise tax-registry row (Qingpu 税务登记, pulled on updated_at): the raw
-- zone keeps every state, so dim_enterprise can keep history.
with

source as (

    select * from {{ source('raw', 'enterprise') }}

),

renamed as (

    select
        -- ids
        record_id,
        upper(trim(uscc)) as uscc,
        jurisdiction_code,
        source_feed,

        -- registry state
        name as enterprise_name,
        industry_code,
        address,
        nullif(trim(town), '') as town,
        registration_status,
        tax_credit_rating,
        updated_at,

        -- pii
        legal_rep_name,
        legal_rep_id_number,

        -- lineage
        source_file,
        source_row,
        batch_id,
        load_date,
        ingested_at

    from source

)

select * from renamed
