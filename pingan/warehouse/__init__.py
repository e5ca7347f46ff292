"""dbt on DuckDB (and Spark) over the committed batches, published atomically."""
