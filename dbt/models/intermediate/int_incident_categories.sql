-- The harmonised category of every incident source code, per feed: the category_mappings seed, with the
-- mapping table each feed uses (the `incident_category_mappings` var).
{%- set mappings = var('incident_category_mappings') %}

with

feed_mapping_tables as (

    select * from (values
        {%- for feed, table in mappings.items() %}
        ('{{ feed }}', '{{ table }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as t (source_feed, mapping_table)

),

category_mappings as (

    select * from {{ ref('category_mappings') }}

),

final as (

    select
        feed_mapping_tables.source_feed,
        category_mappings.source_code as source_category_code,
        category_mappings.category,
        category_mappings.source_label as source_category_label
    from feed_mapping_tables
    inner join category_mappings
        on feed_mapping_tables.mapping_table = category_mappings.mapping_table

)

select * from final
