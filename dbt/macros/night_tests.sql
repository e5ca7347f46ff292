{#-
    Tests run on the night's rows: on an incremental build, pingan/warehouse/build.py sets the var
    `tests_on_night_rows`, and every test of a table kept per raw-zone batch (the facts, dim_enterprise, the
    versions mirrors) reads only the rows of the batches added tonight, like a `where` config on each test
    (a test's own `where` still applies). The full refresh (`pingan build --full-refresh`, and the weekly
    run, which is one) tests whole tables. This overrides dbt's get_where_subquery, which wraps the
    model of every generic test; a relationships test's parent (`to`) is read whole, as it must be.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if var('tests_on_night_rows', false) and is_kept_per_batch(relation) -%}
        {%- set night = "batch_id in (select batch_id from raw.batch_changes where change = 'added')" -%}
        {%- set where = night ~ (" and (" ~ where ~ ")" if where else "") -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- Tables whose rows carry the batch_id of the raw-zone batch they were last rebuilt from. -#}
{% macro is_kept_per_batch(relation) -%}
    {%- set name = (relation.identifier or '') | lower -%}
    {%- do return(
        (name.startswith('fct_') and name != 'fct_quality_results')
        or name == 'dim_enterprise'
        or (name.startswith('int_') and name.endswith('__versions'))
    ) -%}
{%- endmacro %}
