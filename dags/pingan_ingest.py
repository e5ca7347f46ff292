"""Airflow DAGs: one nightly ingest DAG per feed spec under connectors/ (02:00 Asia/Shanghai), from pingan.orchestration.dag_factory.

The words "airflow" and "dag" must appear in this file: Airflow's safe-mode discovery skips files without them.
"""

from pingan.orchestration.dag_factory import broken_feed_specs, broken_ingest_dag, feed_specs, ingest_dag

for _spec in feed_specs():
    globals()[f"ingest_{_spec.feed}"] = ingest_dag(_spec)
for _broken in broken_feed_specs():  # a file that does not load fails its own DAG, naming file and key
    globals()[f"ingest_{_broken.feed}"] = broken_ingest_dag(_broken)
