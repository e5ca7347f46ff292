-- The five jurisdictions of the federation (GB/T 2260 county codes), from the ref_jurisdictions seed.
select * from {{ ref('ref_jurisdictions') }}
