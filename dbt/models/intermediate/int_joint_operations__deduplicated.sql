-- Joint operations, one row per record_id (the latest delivery wins), mechanism harmonised through the
-- category_mappings seed. Only rows newer than fct_joint_operations holds (see ingested_since).
{%- set mappings = var('joint_mechanism_mappings') %}

with

operations as (

    select * from {{ ref('stg_pinghu_jinshan__joint_operations') }}
    where {{ ingested_since('fct_joint_operations') }}

),

latest as (

    select * from operations
    qualify row_number() over (
        partition by record_id
        order by ingested_at desc, batch_id desc, source_row desc
    ) = 1

),

feed_mapping_tables as (

    select * from (values
        {%- for feed, table in mappings.items() %}
        ('{{ feed }}', '{{ table }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as t (source_feed, mapping_table)

),

harmonised as (

    select
        latest.*,
        category_mappings.category as mechanism
    from latest
    left join feed_mapping_tables
        on latest.source_feed = feed_mapping_tables.source_feed
    left join {{ ref('category_mappings') }} as category_mappings
        on feed_mapping_tables.mapping_table = category_mappings.mapping_table
        and latest.source_mechanism = category_mappings.source_code

)

select * from harmonised
