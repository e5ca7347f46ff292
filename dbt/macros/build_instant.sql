{#-
    The instant KPIs are measured at ("is this open item overdue now?"): the start of the dbt run.
    One value for the whole run (run_started_at), not now() per statement, so every model of a build
    agrees on it.
-#}
{% macro build_instant() -%}
    cast('{{ run_started_at.isoformat() }}' as timestamp with time zone)
{%- endmacro %}
