-- Towns and sub-districts (镇/街道) with their border flag; codes below county level may be synthetic,
-- which is_synthetic_code says.
select * from {{ ref('ref_towns') }}
