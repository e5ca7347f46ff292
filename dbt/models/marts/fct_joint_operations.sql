-- One row per joint operation (五联) with both sides' jurisdictions, towns and units. Incremental like
-- fct_incidents: only operations delivered since the last build are merged.
{{
    config(
        materialized='incremental',
        unique_key='record_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

with

operations as (

    select * from {{ ref('int_joint_operations__deduplicated') }}

),

final as (

    select
        -- ids
        record_id,
        jurisdiction_code,
        source_feed,
        operation_id,

        -- operation
        source_mechanism,
        mechanism,
        operation_date,
        location,
        outcome,
        linked_record_ids,

        -- the two sides
        jurisdiction_a,
        town_a,
        units_a,
        jurisdiction_b,
        town_b,
        units_b,

        -- lineage
        source_file,
        batch_id,
        ingested_at

    from operations

)

select * from final
