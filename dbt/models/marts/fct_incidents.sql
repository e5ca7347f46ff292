-- One row per incident of every jurisdiction. Incremental: a nightly run merges only the records delivered
-- since the last build (new calls, and re-deliveries that replace an earlier version by record_id), plus
-- the stored rows whose category code has gained a mapping since.
-- depends_on: {{ ref('int_incident_categories') }} (used only on incremental runs)
{{
    config(
        materialized='incremental',
        unique_key='record_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

with

incidents as (

    select * from {{ ref('int_incidents__unioned') }}

),

towns as (

    select jurisdiction_code, town_name, is_border_town from {{ ref('dim_town') }}

),

final as (

    select
        -- ids
        incidents.record_id,
        incidents.jurisdiction_code,
        incidents.source_feed,
        incidents.source_record_id,

        -- category
        incidents.source_category_code,
        incidents.category,

        -- timestamps
        incidents.reported_at,
        incidents.dispatched_at,
        incidents.arrived_at,
        incidents.closed_at,
        cast(epoch(incidents.arrived_at) - epoch(incidents.dispatched_at) as bigint)
            as dispatch_to_arrival_seconds,

        -- place; is_border_town is taken from the reference data when the row is built
        incidents.town,
        coalesce(towns.is_border_town, false) as is_border_town,
        incidents.grid_id,
        incidents.latitude,
        incidents.longitude,
        incidents.address,

        -- handling
        incidents.handling_unit,
        incidents.disposition,

        -- pii (pseudonymised or dropped by every partner share)
        incidents.caller_phone,
        incidents.involved_id_numbers,

        -- lineage
        incidents.source_file,
        incidents.batch_id,
        incidents.ingested_at

    from incidents
    left join towns
        on incidents.jurisdiction_code = towns.jurisdiction_code
        and incidents.town = towns.town_name

){% if is_incremental() %},

newly_mapped as (

    -- rows stored while their code had no mapping: adding the code to the category_mappings seed fixes
    -- them at the next build, without a full refresh
    select stored.* replace (categories.category as category)
    from {{ this }} as stored
    inner join {{ ref('int_incident_categories') }} as categories
        on stored.source_feed = categories.source_feed
        and stored.source_category_code = categories.source_category_code
    where stored.category is null
        and stored.record_id not in (select record_id from final)

)

select * from final
union all by name
select * from newly_mapped
{% else %}

select * from final
{% endif %}
