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

{#-
    The instant at which a zone's clocks show a local wall-clock TIMESTAMP (e.g. midnight of a local day),
    independent of the session's zone: the inverse of local_time.
-#}
{% macro instant_at_local(wall_time, zone='Asia/Shanghai') -%}
    {{ return(adapter.dispatch('instant_at_local', 'pingan')(wall_time, zone)) }}
{%- endmacro %}

{% macro default__instant_at_local(wall_time, zone) -%}
    timezone('{{ zone }}', cast({{ wall_time }} as timestamp))
{%- endmacro %}

{% macro spark__instant_at_local(wall_time, zone) -%}
    cast(convert_timezone('{{ zone }}', current_timezone(), cast({{ wall_time }} as timestamp_ntz)) as timestamp)
{%- endmacro %}

{% macro trino__instant_at_local(wall_time, zone) -%}
    with_timezone(cast({{ wall_time }} as timestamp), '{{ zone }}')
{%- endmacro %}
