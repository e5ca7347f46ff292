{#-
    Type names that differ between engines. An instant (TIMESTAMPTZ on DuckDB and Trino) is Spark's
    TIMESTAMP, which is always an instant shown in the session's zone. Spark has no length-free VARCHAR:
    dbt.cast on Spark (also used by dbt for model contracts' column types) reads varchar and text as
    string, so a contract's `data_type: varchar` holds on every engine.
-#}
{% macro type_instant() -%}
    {{ return(adapter.dispatch('type_instant', 'pingan')()) }}
{%- endmacro %}

{% macro default__type_instant() -%}
    timestamp with time zone
{%- endmacro %}

{% macro spark__type_instant() -%}
    timestamp
{%- endmacro %}


{% macro spark__cast(field, type) -%}
    {%- set spark_names = {
        'varchar': 'string', 'text': 'string', 'character varying': 'string',
        'timestamptz': 'timestamp', 'timestamp with time zone': 'timestamp',
    } -%}
    cast({{ field }} as {{ spark_names.get(type | trim | lower, type) }})
{%- endmacro %}


{#-
    An instant as Asia/Shanghai wall time with its offset ('2025-03-01 08:00:00+08'), e.g. inside a version
    id: the text DuckDB gives a TIMESTAMPTZ in a Shanghai session, made explicit so the build's session zone
    cannot change an id (Shanghai has kept +08 without daylight saving since 1991). Spark formats whole
    seconds: the registry's timestamps have no fraction.
-#}
{% macro instant_text(column) -%}
    {{ return(adapter.dispatch('instant_text', 'pingan')(column)) }}
{%- endmacro %}

{% macro default__instant_text(column) -%}
    cast({{ local_time(column) }} as varchar) || '+08'
{%- endmacro %}

{% macro spark__instant_text(column) -%}
    date_format({{ local_time(column) }}, 'yyyy-MM-dd HH:mm:ss') || '+08'
{%- endmacro %}


{#- Trino has no exact percentile_cont; approx_percentile (a t-digest) is its percentile aggregate. -#}
{% macro trino__percentile_cont(column, fraction) -%}
    cast(approx_percentile({{ column }}, {{ fraction }}) as double)
{%- endmacro %}
