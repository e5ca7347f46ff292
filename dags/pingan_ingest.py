"""Airflow DAGs: one nightly ingest DAG per feed spec under connectors/ (02:00 Asia/Shanghai), from pingan.orchestration.dag_factory.

The words "airflow" and "dag" must appear in this file: Airflow's safe-mode discovery skips files without them.
"""

from pingan.orchestration.dag_factory import feed_specs, ingest_dag

for _spec in feed_specs():
    globals()[f"ingest_{_spec.feed}"] = ingest_dag(_spec)
