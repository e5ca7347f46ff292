-- One row per incident of every jurisdiction: the latest delivery of each record_id (partners re-send a
-- call when it is closed), its category harmonised through the feed's code_mapping. Incremental per
-- raw-zone batch (macros/batch_replacement.sql): a nightly build recomputes only the records that new or
-- withdrawn batches touch, and always equals a full refresh.
{{
    config(
        materialized=fact_materialization(),
        unique_key='record_id',
        incremental_strategy=fact_strategy(),
        partition_by=fact_partitions('reported_on'),
        on_schema_change='append_new_columns',
        post_hook=fact_post_hooks('reported_on'),
    )
}}

{%- set affected = affected_keys('int_incidents__versions', 'record_id', 'incident',
    code_column='source_category_code', harmonised_column='category',
    new_columns=['reported_on']) %}

with

versions as (

    select * from {{ ref('int_incidents__versions') }}
    where {{ affected }}

),

latest as (

    select * from versions
    {{ latest_delivery('record_id') }}

),

categories as (

    select
        source_feed,
        source_code,
        harmonised_value as category,
        source_label
    from {{ ref('stg_raw__code_mappings') }}
    where entity = 'incident'

),

towns as (

    select
        jurisdiction_code,
        town_name,
        is_border_town
    from {{ ref('dim_town') }}

),

final as (

    select
        -- ids
        latest.record_id,
        latest.jurisdiction_code,
        latest.source_feed,
        latest.source_record_id,

        -- category: an unmapped code stays null (never a silent 'other'); the gate quarantines it first
        latest.source_category_code,
        categories.category,
        categories.source_label as source_category_label,

        -- timestamps, and the local day of the call (Asia/Shanghai, whatever a reader's session zone)
        latest.reported_at,
        {{ local_date('latest.reported_at') }} as reported_on,
        latest.dispatched_at,
        latest.arrived_at,
        latest.closed_at,
        {{ dbt.datediff('latest.dispatched_at', 'latest.arrived_at', 'second') }}
            as dispatch_to_arrival_seconds,

        -- place; is_border_town is taken from the reference data when the row is built
        latest.town,
        coalesce(towns.is_border_town, false) as is_border_town,
        latest.grid_id,
        latest.latitude,
        latest.longitude,
        latest.address,

        -- handling
        latest.handling_unit,
        latest.disposition,

        -- pii (pseudonymised or dropped by every partner share)
        latest.caller_phone,
        latest.involved_id_numbers,

        -- lineage
        latest.source_file,
        latest.source_row,
        latest.batch_id,
        latest.load_date,
        latest.ingested_at

    from latest
    left join categories
        on
            latest.source_feed = categories.source_feed
            and latest.source_category_code = categories.source_code
    left join towns
        on
            latest.jurisdiction_code = towns.jurisdiction_code
            and latest.town = towns.town_name

),

hashed as (

    -- the share publication's change marker (macros/cross_db/row_hash.sql)
    select
        final.*,
        {{ row_hash('final') }} as row_hash
    from final

)

{{ fact_rows('hashed', 'reported_on', affected) }}
