{#-
    Continuous percentile (linear interpolation between the two nearest values) of `column` as a
    double, over the rows of the group: DuckDB's quantile_cont, Spark's percentile. The one place
    the marts use an engine-specific aggregate, so a Spark build needs only the dispatch below.
-#}
{% macro percentile_cont(column, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont')(column, fraction)) }}
{%- endmacro %}

{% macro default__percentile_cont(column, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}

{% macro duckdb__percentile_cont(column, fraction) -%}
    cast(quantile_cont({{ column }}, {{ fraction }}) as double)
{%- endmacro %}

{% macro spark__percentile_cont(column, fraction) -%}
    cast(percentile({{ column }}, {{ fraction }}) as double)
{%- endmacro %}
