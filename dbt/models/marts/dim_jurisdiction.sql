-- The jurisdictions of the federation (GB/T 2260 county codes): the ref_jurisdictions seed, plus any
-- jurisdiction a feed spec under connectors/ names that the seed does not list yet, so a district that
-- joins with one YAML file reaches the marts before anyone edits the reference data
-- (has_reference_data = false; names and framework are then unknown).
with

seeded as (

    select * from {{ ref('ref_jurisdictions') }}

),

from_feed_specs as (

    select distinct jurisdiction_code
    from {{ ref('stg_raw__feeds') }}
    where jurisdiction_code not in (select jurisdiction_code from seeded)

),

final as (

    select
        jurisdiction_code,
        name_zh,
        name_en,
        province,
        role,
        framework,
        true as has_reference_data
    from seeded

    union all

    select
        jurisdiction_code,
        cast(null as {{ dbt.type_string() }}) as name_zh,
        cast(null as {{ dbt.type_string() }}) as name_en,
        cast(null as {{ dbt.type_string() }}) as province,
        'partner' as role,
        cast(null as {{ dbt.type_string() }}) as framework,
        false as has_reference_data
    from from_feed_specs

)

select * from final
