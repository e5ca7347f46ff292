{#-
    The facts (latest delivery per key) incremental on Spark, equal to a full refresh
    (macros/cross_db/incremental_on_spark.sql says why partitions). A fact is partitioned by a date of its
    rows (`day`, e.g. reported_on) and a night rewrites the days it touches with insert_overwrite:
    - the affected keys are the DuckDB build's (affected_keys(): keys of added and removed batches and of
      remapped codes); their new rows come from the mirrors, as on DuckDB;
    - a touched day is a day of those new rows or of the affected keys' stored rows; its other stored rows
      are kept (fact_rows()), so every touched day is written whole;
    - a touched day left with no row (its only record was withdrawn or moved to another day) is not
      rewritten by dynamic overwrite: the files of affected stored rows are noted before the write and
      the days still holding one of them afterwards are dropped (drop_stale_days()).
    On DuckDB every macro here renders what the facts always had (delete+insert by key).
-#}

{#- fct_grid_events is a table on Spark: its overdue events change with the build date, not with a day. -#}
{% macro fact_materialization(spark_incremental=true) -%}
    {{ return('incremental' if target.type == 'duckdb' or spark_incremental else 'table') }}
{%- endmacro %}

{% macro fact_strategy() -%}
    {{ return('insert_overwrite' if target.type == 'spark' else 'delete+insert') }}
{%- endmacro %}

{% macro fact_partitions(day) -%}
    {{ return([day] if target.type == 'spark' else none) }}
{%- endmacro %}

{% macro fact_post_hooks(day) -%}
    {%- if target.type == 'spark' -%}
        {{ return(["{{ drop_stale_days('" ~ day ~ "') }}"]) }}
    {%- endif -%}
    {{ return(["{{ drop_rows_of_removed_batches() }}"]) }}
{%- endmacro %}


{#- The fact's rows from `cte` (the affected keys' new rows) and, on Spark, the kept rows of their days. -#}
{% macro fact_rows(cte, day, affected) -%}
    {%- if target.type == 'spark' and execute and is_incremental() -%}
    {%- do note_stale_files(affected) -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | join(', ') -%}
    select {{ columns }} from {{ cte }}
    union all
    select {{ columns }} from {{ this }}
    where
        not ({{ affected }})
        and {{ day }} in (
            select {{ day }} from {{ cte }}
            union
            select {{ day }} from {{ this }} where {{ affected }}
        )
    {%- else -%}
    select * from {{ cte }}
    {%- endif -%}
{%- endmacro %}


{% macro stale_files_relation() -%}
    {{ return(this.incorporate(path={"identifier": this.identifier ~ '__stale_files'})) }}
{%- endmacro %}


{#- Before the write: the Parquet files that hold the affected keys' stored rows. -#}
{% macro note_stale_files(affected) -%}
    {%- set stale = stale_files_relation() -%}
    {%- do run_query('drop table if exists ' ~ stale) -%}
    {%- do run_query(
        'create table ' ~ stale ~ ' using parquet as select distinct _metadata.file_path as file from '
        ~ this ~ ' where ' ~ affected
    ) -%}
{%- endmacro %}


{#- A post-hook on Spark: days still holding a noted file were not rewritten, so none of their rows stays. -#}
{% macro drop_stale_days(day) -%}
    {%- set stale = stale_files_relation() -%}
    {#- created by run_query, so not in dbt's relation cache: asked of the catalog -#}
    {%- set noted = run_query("show tables in " ~ this.schema ~ " like '" ~ stale.identifier ~ "'")
        if execute else none -%}
    {%- if execute and noted.rows | length -%}
        {%- set days = run_query(
            'select distinct cast(' ~ day ~ ' as string) from ' ~ this
            ~ ' where _metadata.file_path in (select file from ' ~ stale ~ ')'
        ) -%}
        {%- for row in days.rows if row[0] is not none -%}
            {%- do run_query('alter table ' ~ this ~ ' drop if exists partition (' ~ day ~ " = '" ~ row[0] ~ "')") -%}
        {%- endfor -%}
        {%- do run_query('drop table if exists ' ~ stale) -%}
    {%- endif -%}
{%- endmacro %}
