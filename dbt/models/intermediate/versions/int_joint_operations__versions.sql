-- Every committed raw-zone row of this entity, mirrored per batch: a build appends the batches committed
-- since the last one and drops those a rerun replaced, so this table always equals the raw zone.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        post_hook="{{ drop_rows_of_removed_batches() }}",
    )
}}

select * from {{ ref('stg_raw__joint_operations') }}
