"""OpenLineage events, written with the file transport (no server) as JSON lines under the lake.

Three producers share one file: each committed load (source files → raw batch), each dbt build
(openlineage-dbt reads the build's manifest.json and run_results.json: raw views → models), and each
new share snapshot (table → snapshot). Airflow's OpenLineage provider writes its task events beside them
(`make airflow` and docker-compose.yml set its transport). A lake on S3 keeps the file under
$PINGAN_HOME/lineage/ instead: the file transport appends to local files.

Emitting is best effort: a lineage failure is logged, never a reason to fail the night's data.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pingan.core.environment import temporary_env
from pingan.core.settings import Settings
from pingan.raw_zone.manifest import Manifest

log = logging.getLogger(__name__)
NAMESPACE = "pingan"
PRODUCER = "https://github.com/pingan/pingan"
EVENTS_FILE = "openlineage.jsonl"


def events_path(settings: Settings) -> Path:
    if settings.lake_url.startswith("file://"):
        return Path(settings.lake_url.removeprefix("file://")) / "_lineage" / EVENTS_FILE
    return settings.home / "lineage" / EVENTS_FILE


def _client(settings: Settings):
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = events_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))


def _dataset(uri: str, cls):
    """An OpenLineage dataset from a URI: namespace = scheme and authority, name = the path."""
    scheme, _, rest = uri.partition("://")
    if not rest:
        return cls(namespace="file", name=uri)
    authority, _, path = rest.partition("/")
    return cls(namespace=f"{scheme}://{authority}", name="/" + path)


def _emit(settings: Settings, job: str, inputs: list[str], outputs: list[str]) -> None:
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime.now(UTC).isoformat(),
        producer=PRODUCER,
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace=NAMESPACE, name=job),
        inputs=[_dataset(u, InputDataset) for u in inputs],
        outputs=[_dataset(u, OutputDataset) for u in outputs],
    )
    _client(settings).emit(event)


def emit_load(settings: Settings, lake, manifest: Manifest) -> None:
    """A committed load: its source files in, its raw Parquet out."""
    try:
        _emit(
            settings,
            f"ingest.{manifest.feed}",
            [s["name"] for s in manifest.sources],
            [lake.uri(k) for k in manifest.files.raw],
        )
    except Exception as exc:  # lineage must never fail a load
        log.warning("lineage event for %s not written: %s", manifest.feed, exc)


def emit_share(settings: Settings, share) -> None:
    """A new share snapshot: its warehouse table in, the snapshot folder out."""
    try:
        _emit(
            settings,
            f"publish.{share.partner}.{share.dataset}",
            [f"duckdb://{settings.warehouse_path}"],
            [share.path],
        )
    except Exception as exc:
        log.warning("lineage event for share %s/%s not written: %s", share.partner, share.dataset, exc)


def emit_dbt_build(settings: Settings) -> int:
    """openlineage-dbt's events for the last build, from its artifacts; returns how many were written."""
    try:
        from openlineage.common.provider.dbt.local import DbtLocalArtifactProcessor

        with temporary_env(PINGAN_DBT_DB_PATH=str(settings.warehouse_path)):
            processor = DbtLocalArtifactProcessor(
                producer=PRODUCER,
                job_namespace=NAMESPACE,
                project_dir=str(settings.dbt_dir),
                profile_name="pingan",
                target=settings.dbt_target,
                target_path=str(settings.home / "dbt" / "target"),
                skip_errors=True,
            )
            events = processor.parse().events()
        client = _client(settings)
        for event in events:
            client.emit(event)
        return len(events)
    except Exception as exc:
        log.warning("dbt lineage events not written: %s", exc)
        return 0
