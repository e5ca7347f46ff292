-- The open overdue grid events (still open past the deadline of their type), the analysts' work list:
-- a small table, so "latest deadline first" reads a few thousand rows, not every event of the history.
-- Incremental by event on DuckDB: a night deletes and re-reads the events its batches touch and those whose
-- deadline passed tonight (raw.touched_keys, pingan/warehouse/inputs.py): closed or withdrawn events
-- leave, events turning overdue come in.
-- depends_on: {{ source('raw', 'touched_keys') }}
{{
    config(
        materialized=mart_materialization(),
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_touched_keys('event_id', 'grid_event_stage') }}",
    )
}}

with

events as (

    select * from {{ ref('fct_grid_events') }}
    where is_overdue and not is_closed
    {% if is_incremental() %}
        and event_id in ({{ touched_keys('grid_event_stage') }})
    {% endif %}

),

final as (

    select
        event_id,
        jurisdiction_code,
        event_type,
        town,
        grid_id,
        is_border_town,
        is_cross_border,
        discovered_at,
        deadline_at,
        closed_at,
        handling_unit,
        batch_id
    from events

)

select * from final
