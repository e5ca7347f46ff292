"""REST JSON and HTTP file transports against the simulator's real HTTP server on 127.0.0.1,
with injected faults: 500s, responses slower than the timeout, and pages served twice."""

from __future__ import annotations

from datetime import date

import pytest

from pingan import raw_zone
from pingan.core.feed_spec import load_specs
from pingan.core.settings import load_settings
from pingan.core.storage import Store
from pingan.ingest.load import ingest_feed
from pingan.ingest.transports.http_client import SourceHttpError
from pingan_sim import simulate
from pingan_sim.servers import Faults, SourceServers

DAY = date(2025, 3, 1)
TOKEN = "test-token-not-a-secret"


@pytest.fixture(scope="module")
def sim_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("rest-home")
    simulate(home, Store(f"file://{home / 'landing'}"), DAY, DAY, seed=11, scale=0.1)
    return home


@pytest.fixture
def env(sim_home, tmp_path, monkeypatch):
    monkeypatch.setenv("PINGAN_HOME", str(sim_home))
    monkeypatch.setenv("PINGAN_LAKE_URL", f"file://{tmp_path / 'lake'}")
    monkeypatch.setenv("PINGAN_QINGPU_FIRE_TOKEN", TOKEN)
    return monkeypatch


def fast(spec, **transport):
    """Short timeouts and backoff so fault tests take seconds, not minutes."""
    t = spec.transport.model_copy(update={"timeout_seconds": 1.0, "backoff_seconds": 0.05, **transport})
    return spec.model_copy(update={"transport": t})


def load(env, feed: str, faults: Faults | None = None, **transport):
    settings = load_settings()
    spec = fast(load_specs(settings.connectors_dir)[feed], **transport)
    lake = Store(settings.lake_url)
    lake.ensure()
    with SourceServers(settings.home, TOKEN, faults=faults) as servers:
        env.setenv("PINGAN_QINGPU_FIRE_URL", servers.fire_url)
        env.setenv("PINGAN_PINGHU_JINSHAN_URL", servers.joint_ops_url)
        result = ingest_feed(spec, DAY, settings, lake)
    ids = sorted(lake.read_parquet(result.manifest.files.raw)["record_id"].to_pylist())
    return result, ids, servers


@pytest.mark.parametrize("feed", ["qingpu_fire_inspections", "qingpu_fire_alarms"])
def test_faults_change_nothing_in_what_is_loaded(env, feed):
    clean, clean_ids, clean_server = load(env, feed)
    assert clean.rows_read > 0 and len(clean_ids) == clean.rows_written
    pages = len(clean.manifest.sources)

    flaky, flaky_ids, flaky_server = load(env, feed, Faults(fail_first_n=3, slow_first_n=0))
    assert flaky_ids == clean_ids
    assert flaky_server.faults.requests_served >= pages + 3  # the 500s were answered and retried

    slow, slow_ids, _ = load(env, feed, Faults(slow_first_n=1, slow_seconds=2.0))
    assert slow_ids == clean_ids

    repeated, repeated_ids, rep_server = load(
        env, feed, Faults(repeat_page=True), **({"pagination": _small_pages(feed)})
    )
    small_clean, small_ids, _ = load(env, feed, None, **({"pagination": _small_pages(feed)}))
    assert repeated_ids == small_ids == clean_ids
    assert repeated.rows_read == small_clean.rows_read  # the repeated page was not counted twice
    assert rep_server.faults.requests_served > len(small_clean.manifest.sources)


def _small_pages(feed: str):
    spec = load_specs(load_settings().connectors_dir)[feed]
    p = spec.transport.pagination
    field = "page_size" if p.kind == "page" else "limit"
    return p.model_copy(update={field: 7})  # many pages, so a later page exists to repeat


def test_persistent_server_errors_fail_with_the_url_and_status(env):
    with pytest.raises(SourceHttpError, match=r"fire/inspections.*HTTP 500"):
        load(env, "qingpu_fire_inspections", Faults(fail_first_n=50), max_retries=2)
    assert (
        raw_zone.committed_manifest_record(Store(load_settings().lake_url), "qingpu_fire_inspections", DAY)
        is None
    )


def test_wrong_token_is_refused_and_missing_token_names_the_variable(env):
    env.setenv("PINGAN_QINGPU_FIRE_TOKEN", "wrong")
    with pytest.raises(SourceHttpError, match="HTTP 401"):
        load(env, "qingpu_fire_alarms")
    env.delenv("PINGAN_QINGPU_FIRE_TOKEN")
    with pytest.raises(SourceHttpError, match="PINGAN_QINGPU_FIRE_TOKEN is not set"):
        load(env, "qingpu_fire_alarms")


def test_csv_over_http_with_a_flaky_server(env):
    clean, clean_ids, _ = load(env, "pinghu_jinshan_joint_operations")
    flaky, flaky_ids, _ = load(env, "pinghu_jinshan_joint_operations", Faults(fail_first_n=2))
    assert clean.rows_read > 0 and flaky_ids == clean_ids
    assert clean.manifest.sources[0]["name"].endswith("/api/v1/joint-operations.csv?date=2025-03-01")
