"""Alerts from failed and retried Airflow tasks: one structured log line, and a record in the lake that
`pingan status` lists, so whoever looks at the lake, not only at Airflow's UI, sees that a night went wrong.

Records are `_alerts/<dag_id>/<run_id>/<task_id>.json` for a failure (a retry that fails again overwrites
its own record) and `<task_id>.try<n>.retry.json` for each try that failed and was retried: a night that
succeeded only on a retry still says that something broke, and why.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pingan.core.storage import Store

log = logging.getLogger("pingan.ops.alerts")
PREFIX = "_alerts/"


@dataclass(frozen=True)
class Alert:
    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    error: str
    logical_date: str | None
    raised_at: str
    kind: str = "failure"  # failure | retry (the try failed, Airflow tries again)

    @property
    def key(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.=-]", "_", self.run_id)
        tail = f".try{self.try_number}.retry" if self.kind == "retry" else ""
        return f"{PREFIX}{self.dag_id}/{safe}/{self.task_id}{tail}.json"


def record_alert(lake: Store, alert: Alert) -> None:
    # the error is the task's one-line message: pingan's errors name file, row and rule, never secrets or PII
    event = "pingan_task_retry" if alert.kind == "retry" else "pingan_alert"
    log.error(json.dumps({"event": event, **asdict(alert)}, ensure_ascii=False, sort_keys=True))
    lake.put_bytes(
        alert.key, json.dumps(asdict(alert), ensure_ascii=False, indent=2).encode(), "application/json"
    )


def recent_alerts(lake: Store, limit: int = 20) -> list[Alert]:
    """The latest alerts first."""
    alerts = []
    for key in lake.list(PREFIX):
        data = lake.get_bytes(key) if key.endswith(".json") else None
        if data:
            alerts.append(Alert(**json.loads(data)))
    return sorted(alerts, key=lambda a: a.raised_at, reverse=True)[:limit]


def alert_from_context(context: dict, kind: str = "failure") -> Alert:
    """An Alert from an Airflow task's failure (or retry) callback context."""
    ti = context["ti"]
    error = context.get("exception")
    logical = context.get("logical_date")
    return Alert(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        try_number=int(ti.try_number or 0),
        error=f"{type(error).__name__}: {error}" if error else "task failed",
        logical_date=logical.isoformat() if logical else None,
        raised_at=datetime.now(UTC).isoformat(),
        kind=kind,
    )
