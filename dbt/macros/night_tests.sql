{#-
    Tests run on the night's rows: every generic test of a table kept per raw-zone batch (the facts,
    dim_enterprise, the versions mirrors) reads only the rows of the batches this build added, like a
    `where` config on each test (a test's own `where` still applies). On a nightly build those are the
    night's batches; on a full refresh (`pingan build --full-refresh`, also the weekly run) every committed
    batch counts as added (raw.batch_changes, pingan/warehouse/inputs.py), so whole tables are tested. The
    filter is decided in SQL, not by a dbt var, so nightly and full builds share dbt's partial parse.
    This overrides dbt's get_where_subquery, which wraps the model of every generic test; a relationships
    test's parent (`to`) is read whole, as it must be.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if is_kept_per_batch(relation) -%}
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

{#- Tables whose rows carry the batch_id of the raw-zone batch they were last rebuilt from (and the view
    of fct_incidents with its double-report flag). -#}
{% macro is_kept_per_batch(relation) -%}
    {%- set name = (relation.identifier or '') | lower -%}
    {%- do return(
        (name.startswith('fct_') and name != 'fct_quality_results')
        or name in ('dim_enterprise', 'int_incidents__double_reports_flagged')
        or (name.startswith('int_') and name.endswith('__versions'))
    ) -%}
{%- endmacro %}
