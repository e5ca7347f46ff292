{#-
    On Spark, an incremental model is built as a table, from the whole raw zone, every build.

    Why: our incremental models replace per raw-zone batch with DELETE (the versions mirrors' post-hook and
    the facts' delete+insert), and Spark cannot delete from plain Parquet tables; Delta or Iceberg could,
    but their jars come from Maven, which these machines cannot reach. pingan/warehouse_spark.py therefore
    builds into an empty catalog with --full-refresh and exposes every committed batch in raw.<entity>, so
    is_incremental() is false and each model's own SQL computes the full answer: the same rows the DuckDB
    build's incremental merges keep. The consequence: a Spark build costs the whole history, not one day.
    The models are unchanged; only how they materialise differs.
-#}
{% materialization incremental, adapter='spark' -%}
    {{ return(materialization_table_spark()) }}
{%- endmaterialization %}


{#- A withdrawn batch's rows leave the mirror by DELETE on DuckDB; a Spark build rebuilds it instead. -#}
{% macro spark__drop_rows_of_removed_batches() -%}
{%- endmacro %}
