-- Every committed raw-zone row of this entity, mirrored per batch: a build appends the batches committed
-- since the last one and drops those a rerun replaced, so this table always equals the raw zone. On Spark
-- it overwrites those batches' (load_date, source_feed) partitions (macros/cross_db/incremental_on_spark).
{{
    config(
        materialized='incremental',
        incremental_strategy=mirror_strategy(),
        partition_by=mirror_partitions(),
        on_schema_change='append_new_columns',
        post_hook="{{ drop_rows_of_removed_batches() }}",
    )
}}

select * from {{ ref('stg_raw__enterprises') }}
