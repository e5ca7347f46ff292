"""Airflow DAG: the warehouse build and partner publication, scheduled on the feeds' assets."""

from pingan.orchestration.dag_factory import feed_specs, warehouse_dag

warehouse_build_and_publish = warehouse_dag(feed_specs())
