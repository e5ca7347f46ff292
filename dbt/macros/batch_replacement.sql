{#-
    Incremental models replace per raw-zone batch, the unit the raw zone commits, so an incremental build
    always equals a full refresh: pingan/warehouse_inputs.py registers which batches were added since the
    working file's last build, which were removed (a rerun replaced them), and the keys removed ones held.
-#}

{#- A post-hook: rows that came from a batch the lake no longer commits leave the model. -#}
{% macro drop_rows_of_removed_batches() -%}
    {{ return(adapter.dispatch('drop_rows_of_removed_batches', 'pingan')()) }}
{%- endmacro %}

{% macro default__drop_rows_of_removed_batches() -%}
    delete from {{ this }}
    where batch_id in (
        select batch_id from {{ source('raw', 'batch_changes') }} where change = 'removed'
    )
{%- endmacro %}


{#-
    The keys an incremental fact must recompute: those of rows in added batches, those removed batches
    held (a withdrawn or changed record), and, when the fact harmonises a code, stored rows whose code now
    maps elsewhere (a feed YAML's code_mapping was edited). On a full build: every key (`true`), and also
    when the stored table lacks one of `new_columns` (a column added since it was built), so no stored row
    keeps a null there. refs and sources are resolved outside the `if` so dbt sees the dependencies.
-#}
{% macro affected_keys(versions_model, key, entity, code_column=none, harmonised_column=none, new_columns=[]) -%}
    {%- set versions = ref(versions_model) -%}
    {%- set changes = source('raw', 'batch_changes') -%}
    {%- set removed = source('raw', 'removed_keys') -%}
    {%- set mappings = ref('stg_raw__code_mappings') -%}
    {%- if is_incremental() and not stored_lacks_columns(new_columns) -%}
    {{ key }} in (
        select {{ key }} from {{ versions }}
        where batch_id in (select batch_id from {{ changes }} where change = 'added')
        union
        select key from {{ removed }} where entity = '{{ entity }}'
        {%- if code_column %}
        union
        select stored.{{ key }}
        from {{ this }} as stored
        left join {{ mappings }} as mappings
            on stored.source_feed = mappings.source_feed
            and stored.{{ code_column }} = mappings.source_code
        where stored.{{ harmonised_column }} is distinct from mappings.harmonised_value
        {%- endif %}
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}


{#- The latest delivery of each key wins: the later logical day first, then the later load. -#}
{% macro latest_delivery(key) -%}
    qualify row_number() over (
        partition by {{ key }}
        order by load_date desc, ingested_at desc, batch_id desc, source_row desc
    ) = 1
{%- endmacro %}


{#- Whether the stored incremental table ({{ this }}) lacks any of `columns` (checked when dbt executes). -#}
{% macro stored_lacks_columns(columns) -%}
    {%- if not execute or not columns -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set stored = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- for column in columns -%}
        {%- if column | lower not in stored -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}
