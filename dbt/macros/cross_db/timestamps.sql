{#-
    Local wall-clock time of a TIMESTAMPTZ instant, for bucketing by local day or month. DuckDB's
    timezone() and Trino's AT TIME ZONE say it directly; Spark's TIMESTAMP is an instant shown in the
    session's zone, so it is taken as wall time there and converted to the target zone.
-#}
{% macro local_time(column, zone='Asia/Shanghai') -%}
    {{ return(adapter.dispatch('local_time', 'pingan')(column, zone)) }}
{%- endmacro %}

{% macro default__local_time(column, zone) -%}
    timezone('{{ zone }}', {{ column }})
{%- endmacro %}

{% macro spark__local_time(column, zone) -%}
    convert_timezone(current_timezone(), '{{ zone }}', cast({{ column }} as timestamp_ntz))
{%- endmacro %}

{% macro trino__local_time(column, zone) -%}
    cast({{ column }} at time zone '{{ zone }}' as timestamp)
{%- endmacro %}
