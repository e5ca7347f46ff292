-- One row per fire-safety inspection (消防检查) of a unit, identified by its USCC. The brigade's API
-- re-delivers an inspection whenever rectification progresses: the latest delivery wins.
{{
    config(
        materialized=fact_materialization(),
        unique_key='record_id',
        incremental_strategy=fact_strategy(),
        partition_by=fact_partitions('inspected_on'),
        on_schema_change='append_new_columns',
        post_hook=fact_post_hooks('inspected_on'),
    )
}}

{%- set affected = affected_keys('int_fire_inspections__versions', 'record_id', 'fire_inspection') %}

with

versions as (

    select * from {{ ref('int_fire_inspections__versions') }}
    where {{ affected }}

),

latest as (

    -- the latest delivery of a record wins (macros/batch_replacement.sql)
    select * from versions
    {{ latest_delivery('record_id') }}

),

final as (

    select
        -- ids
        record_id,
        inspection_id,
        uscc,
        jurisdiction_code,
        source_feed,

        -- inspection
        unit_name,
        inspected_on,
        town,
        inspector_unit,

        -- hazards (隐患): found, rectified so far, still open
        coalesce(hazards_found, 0) as hazards_found,
        coalesce(hazards_rectified, 0) as hazards_rectified,
        greatest(coalesce(hazards_found, 0) - coalesce(hazards_rectified, 0), 0) as open_hazards,
        coalesce(hazards_found, 0) > coalesce(hazards_rectified, 0) as has_open_hazards,
        rectification_deadline,
        updated_at,

        -- lineage
        source_file,
        batch_id,
        load_date,
        ingested_at

    from latest

)

{{ fact_rows('final', 'inspected_on', affected) }}
