-- The enterprise tax registry (税务登记) as a type-2 slowly changing dimension: one row per state of a
-- USCC, valid from its updated_at until the next state's (valid_to exclusive; null for the current one).
-- Incremental by USCC on DuckDB: a night recomputes the whole history of the USCCs its registry batches
-- (added or withdrawn) name, and only those; delete+insert by key rather than a merge on
-- enterprise_version_id, because a withdrawn batch can take states away (a USCC may lose every row).
-- depends_on: {{ source('raw', 'touched_keys') }}
-- depends_on: {{ source('raw', 'touched_months') }}
{{
    config(
        materialized=mart_materialization(),
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_keys('uscc', 'enterprise') }}",
    )
}}

with

versions as (

    select * from {{ ref('int_enterprises__versions') }}
    {% if is_incremental() %}
        where uscc in ({{ touched_keys('enterprise') }})  -- the USCCs of tonight's registry batches
    {% endif %}

),

states as (

    -- one state per (uscc, updated_at): a re-delivery of the same state replaces the earlier copy
    select * from versions
    where uscc is not null and updated_at is not null
    {{ latest_delivery('uscc, updated_at') }}

),

intervals as (

    select
        states.*,
        states.updated_at as valid_from,
        lead(states.updated_at) over (partition by states.uscc order by states.updated_at) as valid_to
    from states

),

final as (

    select
        -- ids: one row per state of an enterprise
        uscc || '@' || {{ instant_text('valid_from') }} as enterprise_version_id,
        uscc,
        jurisdiction_code,
        source_feed,

        -- registry state
        enterprise_name,
        industry_code,
        address,
        town,
        registration_status,
        tax_credit_rating,
        -- 非正常户: a taxpayer the tax bureau flagged for not filing or not being found at its address
        registration_status = '非正常户' as is_abnormal_tax_status,

        -- validity of the state (SCD2)
        valid_from,
        valid_to,
        valid_to is null as is_current,

        -- pii (pseudonymised or dropped by every partner share)
        legal_rep_name,
        legal_rep_id_number,

        -- lineage
        source_file,
        batch_id,
        ingested_at

    from intervals

)

select * from final
