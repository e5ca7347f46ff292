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
