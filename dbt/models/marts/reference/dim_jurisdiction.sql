-- Every jurisdiction of the federation (GB/T 2260 county codes): the five of the ref_jurisdictions seed,
-- plus any district whose feed spec was added under connectors/ (named from GB/T 2260), so onboarding a
-- district is its feed YAML alone.
with

seeded as (

    select * from {{ ref('ref_jurisdictions') }}

),

from_feeds as (

    select distinct
        jurisdiction_code,
        jurisdiction_name as name_zh,
        cast(null as {{ dbt.type_string() }}) as name_en,
        province_name as province,
        'feed_only' as role,
        cast(null as {{ dbt.type_string() }}) as framework
    from {{ ref('stg_raw__feeds') }}
    where jurisdiction_code not in (select seeded.jurisdiction_code from seeded)

),

final as (

    select * from seeded
    union all
    select * from from_feeds

)

select * from final
