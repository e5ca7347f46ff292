{#-
    The month-grained KPI marts (macros/period_rebuild.sql) incremental on Spark, equal to a full refresh.
    A mart is partitioned by its month column and a night rewrites the months it touches with
    insert_overwrite (dynamic partition overwrite): the same months DuckDB deletes and recomputes
    (raw.touched_months and the rebuilt facts' rows of raw.touched_keys), plus, since Parquet cannot
    UPDATE, the stored months whose is_source_stale differs from this build's feeds (DuckDB updates the
    flag in place: refresh_source_staleness()).
    A touched month left with no row is not rewritten by dynamic overwrite: its files are noted before
    the write (delete_months() on Spark) and its partition dropped after it (drop_emptied_months()), as
    for the facts' days (facts_on_spark.sql). On DuckDB every macro here renders what the marts had.
-#}

{% macro month_mart_materialization() -%}
    {{ return('incremental' if target.type in ('duckdb', 'spark') else 'table') }}
{%- endmacro %}

{% macro month_mart_strategy() -%}
    {{ return('insert_overwrite' if target.type == 'spark' else 'append') }}
{%- endmacro %}

{% macro month_mart_partitions(month_column) -%}
    {{ return([month_column] if target.type == 'spark' else none) }}
{%- endmacro %}


{#- The months a night rebuilds: `months_query` and, on Spark, the months whose staleness flag changes. -#}
{% macro rebuilt_months(months_query, month_column, entities) -%}
    {{ return(adapter.dispatch('rebuilt_months', 'pingan')(months_query, month_column, entities)) }}
{%- endmacro %}

{% macro default__rebuilt_months(months_query, month_column, entities) -%}
    {{ months_query }}
{%- endmacro %}

{% macro spark__rebuilt_months(months_query, month_column, entities) -%}
    {%- if is_incremental() -%}
    select month from ({{ months_query }}) as touched
    union
    {#- stg_raw__feeds as refresh_source_staleness() reads it: int_feed_staleness is ephemeral, and the
        pre-hook runs this query on its own #}
    select stored.{{ month_column }} as month from {{ this }} as stored
    left join (
        select jurisdiction_code, bool_or(is_stale) as is_source_stale from {{ ref('stg_raw__feeds') }}
        where entity in ({% for e in entities %}'{{ e }}'{{ ", " if not loop.last }}{% endfor %})
        group by jurisdiction_code
    ) as staleness
        on stored.jurisdiction_code = staleness.jurisdiction_code
    where stored.is_source_stale <> coalesce(staleness.is_source_stale, false)
    {%- else -%}
    {{ months_query }}
    {%- endif -%}
{%- endmacro %}


{#- A post-hook: on Spark, the months noted before the write and not rewritten by it leave the mart. -#}
{% macro drop_emptied_months(month_column) -%}
    {%- if target.type == 'spark' and execute and is_incremental() -%}
        {%- do drop_stale_days(month_column) -%}
    {%- endif -%}
{%- endmacro %}
