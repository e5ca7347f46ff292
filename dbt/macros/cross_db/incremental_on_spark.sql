{#-
    How incremental models materialise on Spark (pingan/warehouse/spark.py).

    Plain Parquet tables cannot DELETE, and Delta or Iceberg jars come from Maven, which these machines
    cannot reach. What Parquet can do is replace whole partitions: dbt-spark's `insert_overwrite` with
    spark.sql.sources.partitionOverwriteMode=dynamic rewrites only the partitions the new rows fall in.
    So, on Spark:
    - the per-batch mirrors (int_<entity>s__versions) are incremental with dbt-spark's own materialization,
      partitioned by (load_date, source_feed), the raw zone's unit: one committed batch per feed and day.
      A night's added batches overwrite their partitions (a rerun replaces the day it reruns); a batch the
      lake no longer commits and nothing replaces has its partition dropped by the post-hook below
      (dynamic overwrite leaves a partition alone when no new row falls in it);
    - the facts (delete+insert by key on DuckDB) are partitioned by a date of their rows and rewrite only
      the days a night touches (macros/cross_db/facts_on_spark.sql), except fct_grid_events, a table;
    - the month KPI marts rewrite only the months a night touches (month_marts_on_spark.sql); dim_enterprise,
      the incident pairs and mart_overdue_grid_events are tables on Spark (mart_materialization()).
    A full rebuild (the default `pingan build --engine spark`) passes --full-refresh into an empty catalog,
    so every model is a table and is_incremental() is false. DuckDB's configs and SQL are unchanged.
-#}

{#- The mirrors' strategy and partitions: append on DuckDB (unchanged), partition overwrite on Spark. -#}
{% macro mirror_strategy() -%}
    {{ return('insert_overwrite' if target.type == 'spark' else 'append') }}
{%- endmacro %}

{% macro mirror_partitions() -%}
    {{ return(['load_date', 'source_feed'] if target.type == 'spark' else none) }}
{%- endmacro %}


{#-
    A post-hook of the mirrors on Spark: rows still held from a removed batch are in a partition no added
    batch overwrote (its rerun delivered nothing), so that partition is dropped. Run as statements here,
    one per partition; the hook itself renders nothing.
-#}
{% macro spark__drop_rows_of_removed_batches() -%}
    {%- if execute and is_incremental() -%}
        {%- set stale = run_query(
            "select distinct cast(load_date as string) as load_date, source_feed from " ~ this
            ~ " where batch_id in (select batch_id from " ~ source('raw', 'batch_changes')
            ~ " where change = 'removed')"
        ) -%}
        {%- for row in stale.rows -%}
            {%- do run_query(
                "alter table " ~ this ~ " drop if exists partition (load_date = '" ~ row[0]
                ~ "', source_feed = '" ~ row[1] ~ "')"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
