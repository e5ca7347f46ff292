-- Every source category code must map to a harmonised category; an unmapped code is a quality failure,
-- never a silent 'other' (the gate quarantines such rows first). Warns (the build and the publication go
-- on); the codes to add to the feed YAML's code_mapping stay queryable in
-- quality.assert_incident_categories_mapped.
{{ config(severity='warn', store_failures=true, schema='quality') }}

select
    source_feed,
    source_category_code,
    count(*) as incidents
from {{ ref('fct_incidents') }}
where category is null
group by 1, 2
order by 1, 2
