-- Every jurisdiction's incidents in one shape: categories harmonised through the category_mappings seed,
-- and one row per record_id (the latest delivery wins: partners re-send a call when it is closed).
-- Ephemeral and inlined into fct_incidents, which passes only rows newer than its own (see ingested_since).

with

incidents as (

    {% for model in ['stg_qingpu__incidents', 'stg_wujiang__incidents', 'stg_jiashan__incidents'] -%}
    select * from {{ ref(model) }}
    where {{ ingested_since('fct_incidents') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

latest as (

    select * from incidents
    qualify row_number() over (
        partition by record_id
        order by ingested_at desc, batch_id desc, source_row desc
    ) = 1

),

categories as (

    select * from {{ ref('int_incident_categories') }}

),

harmonised as (

    select
        latest.*,
        -- an unmapped code stays null (never a silent 'other'); assert_incident_categories_mapped reports it
        categories.category,
        categories.source_category_label
    from latest
    left join categories
        on latest.source_feed = categories.source_feed
        and latest.source_category_code = categories.source_category_code

)

select * from harmonised
