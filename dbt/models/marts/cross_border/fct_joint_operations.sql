-- One row per joint operation (五联) with both sides' jurisdictions, towns and units, the mechanism
-- harmonised through the feed's code_mapping. Incremental per raw-zone batch like fct_incidents.
{{
    config(
        materialized=fact_materialization(),
        unique_key='record_id',
        incremental_strategy=fact_strategy(),
        partition_by=fact_partitions('operation_date'),
        on_schema_change='append_new_columns',
        post_hook=fact_post_hooks('operation_date'),
    )
}}

{%- set affected = affected_keys('int_joint_operations__versions', 'record_id', 'joint_operation',
    code_column='source_mechanism', harmonised_column='mechanism') %}

with

versions as (

    select * from {{ ref('int_joint_operations__versions') }}
    where {{ affected }}

),

latest as (

    select * from versions
    {{ latest_delivery('record_id') }}

),

mechanisms as (

    select
        source_feed,
        source_code,
        harmonised_value as mechanism
    from {{ ref('stg_raw__code_mappings') }}
    where entity = 'joint_operation'

),

final as (

    select
        -- ids
        latest.record_id,
        latest.jurisdiction_code,
        latest.source_feed,
        latest.operation_id,

        -- operation
        latest.source_mechanism,
        mechanisms.mechanism,
        latest.operation_date,
        latest.location,
        latest.outcome,
        latest.linked_record_ids,

        -- the two sides
        latest.jurisdiction_a,
        latest.town_a,
        latest.units_a,
        latest.jurisdiction_b,
        latest.town_b,
        latest.units_b,

        -- lineage
        latest.source_file,
        latest.source_row,
        latest.batch_id,
        latest.load_date,
        latest.ingested_at

    from latest
    left join mechanisms
        on
            latest.source_feed = mechanisms.source_feed
            and latest.source_mechanism = mechanisms.source_code

),

hashed as (

    -- the share publication's change marker (macros/cross_db/row_hash.sql)
    select
        final.*,
        {{ row_hash('final') }} as row_hash
    from final

)

{{ fact_rows('hashed', 'operation_date', affected) }}
