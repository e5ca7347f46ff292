"""The nightly job as plain functions: ingest every feed for a day, build the warehouse, publish shares.

The CLI and the Airflow DAGs call these same functions. A feed that fails or is late does not stop the
others; the day's result says which feeds loaded, which were blocked and which failed.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pingan import raw_zone
from pingan.environment import temporary_env
from pingan.feed_spec import FeedSpec, load_specs
from pingan.ingest import BatchResult, ingest_feed, new_batch_id
from pingan.settings import Settings
from pingan.storage import Store

log = logging.getLogger(__name__)

# Base URLs and tokens of the simulated HTTP sources, as the feed specs name them.
SIM_ENV = {
    "fire_url": "PINGAN_QINGPU_FIRE_URL",
    "fire_token": "PINGAN_QINGPU_FIRE_TOKEN",
    "joint_ops_url": "PINGAN_PINGHU_JINSHAN_URL",
}


@dataclass
class FeedOutcome:
    feed: str
    status: str  # committed | blocked | late | failed
    result: BatchResult | None = None
    error: str | None = None


@dataclass
class DayResult:
    day: date
    feeds: list[FeedOutcome] = field(default_factory=list)
    build: object | None = None
    shares: list = field(default_factory=list)

    @property
    def failed(self) -> list[FeedOutcome]:
        return [f for f in self.feeds if f.status in ("failed", "blocked")]


def lake_store(settings: Settings) -> Store:
    lake = Store(settings.lake_url, settings.s3)
    lake.ensure()
    return lake


def quality_gate(settings: Settings) -> Callable:
    """The Great Expectations gate, bound to this deployment's suites (GX is imported on first use)."""
    from pingan.quality.gate import validate_batch
    from pingan.quality.parameters import suite_parameters

    def gate(spec: FeedSpec, table):
        # the feed's code mapping tells the suite which source codes are known (unmapped = quality failure)
        params = suite_parameters(spec) or None
        return validate_batch(spec.entity, table, overrides=spec.quality_overrides,
                              suites_dir=settings.expectations_dir, parameters=params)

    return gate


@contextmanager
def simulated_sources(settings: Settings, feeds: list[str] | None = None) -> Iterator[None]:
    """Serve the simulated REST/HTTP sources on loopback when a selected feed needs one that is not configured.

    In production the base URLs are set and nothing is started; in the embedded default the simulator's
    servers stand in for the fire brigade API and the Pinghu–Jinshan platform.
    """
    needed = [s for s in select_specs(settings, feeds) if s.transport.kind in ("rest_json", "http_file")
              and not os.environ.get(s.transport.base_url_env)]
    if not needed:
        yield
        return
    from pingan.simulate.servers import SourceServers

    token = os.environ.get(SIM_ENV["fire_token"]) or secrets.token_urlsafe(24)
    with SourceServers(settings.home, token) as servers, temporary_env(**{
        SIM_ENV["fire_url"]: os.environ.get(SIM_ENV["fire_url"]) or servers.fire_url,
        SIM_ENV["joint_ops_url"]: os.environ.get(SIM_ENV["joint_ops_url"]) or servers.joint_ops_url,
        SIM_ENV["fire_token"]: token,
    }):
        yield


def select_specs(settings: Settings, feeds: list[str] | None) -> list[FeedSpec]:
    specs = load_specs(settings.connectors_dir)
    if feeds:
        unknown = sorted(set(feeds) - set(specs))
        if unknown:
            raise KeyError(f"unknown feed(s) {unknown}; known: {', '.join(sorted(specs))}")
        return [specs[f] for f in feeds]
    return list(specs.values())


def ingest_day(settings: Settings, day: date, *, feeds: list[str] | None = None, gate: bool = True,
               progress: Callable[[str], None] | None = None, force: bool = False) -> list[FeedOutcome]:
    from pingan.transports import SourceMissing

    lake = lake_store(settings)
    check = quality_gate(settings) if gate else None
    outcomes = []
    for spec in select_specs(settings, feeds):
        started = datetime.now(UTC).isoformat()
        try:
            result = ingest_feed(spec, day, settings, lake, gate=check, progress=progress, force=force)
            outcomes.append(FeedOutcome(spec.feed, result.status, result))
            continue
        except SourceMissing as exc:
            log.warning("%s", exc)
            outcome = FeedOutcome(spec.feed, "late", error=str(exc))
        except Exception as exc:  # one broken feed must not stop the others
            log.error("%s %s: load failed: %s", spec.feed, day, exc)
            outcome = FeedOutcome(spec.feed, "failed", error=f"{type(exc).__name__}: {exc}")
        outcomes.append(outcome)
        raw_zone.record_attempt_failure(
            lake, feed=spec.feed, entity=spec.entity, jurisdiction=spec.jurisdiction_code, load_date=day,
            batch_id=new_batch_id(day), status=outcome.status, error=outcome.error, started_at=started,
            finished_at=datetime.now(UTC).isoformat())
    return outcomes


def build_warehouse(settings: Settings, *, full_refresh: bool = False, build_date: date | None = None,
                    progress: Callable[[str], None] | None = None):
    from pingan.warehouse import build

    lake = lake_store(settings)
    return build(settings, raw_zone.committed_batches(lake), lake=lake, full_refresh=full_refresh,
                 build_date=build_date, progress=progress)


def publish_shares(settings: Settings, day: date, partners: list[str] | None = None):
    from pingan.sharing.publish import publish, share_store

    return publish(settings, lake_store(settings), share_store(settings), partners=partners, as_of=day)


def run_day(settings: Settings, day: date, *, feeds: list[str] | None = None,
            progress: Callable[[str], None] | None = None) -> DayResult:
    result = DayResult(day)
    with simulated_sources(settings, feeds):
        result.feeds = ingest_day(settings, day, feeds=feeds, progress=progress)
    result.build = build_warehouse(settings, build_date=day, progress=progress)
    result.shares = publish_shares(settings, day)
    return result
