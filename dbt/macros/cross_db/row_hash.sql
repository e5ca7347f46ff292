{#-
    A hash of every column of a CTE's row (`cte` names the CTE): the change marker the hub's share
    publication compares each night (pingan/sharing/grant_reads.py). A rebuilt row with any value changed
    gets another hash and an equal row the same one, so an incremental build still equals a full refresh;
    the publication then reads this one narrow column of the history instead of hashing every granted
    column of every row. DuckDB: hash() of the row as a struct (UBIGINT); Spark: xxhash64 of its columns.
    Other engines (Trino) leave it null: the hub publishes from its DuckDB warehouse only.
-#}
{% macro row_hash(cte) -%}
    {{ return(adapter.dispatch('row_hash', 'pingan')(cte)) }}
{%- endmacro %}

{% macro default__row_hash(cte) -%}
    cast(null as bigint)
{%- endmacro %}

{% macro duckdb__row_hash(cte) -%}
    hash({{ cte }})
{%- endmacro %}

{% macro spark__row_hash(cte) -%}
    xxhash64({{ cte }}.*)
{%- endmacro %}
