"""Shares grow by the night: a night's publish merges only the changed rows into a new Delta version, a
partner's pull fetches only that version's new files, the share server answers `startingVersion` and the
change data feed, and the result always equals a full re-snapshot."""

from __future__ import annotations

import json
from datetime import date, timedelta

import delta_sharing
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import yaml
from server_fixtures import running
from share_fixtures import (
    SHANGHAI,
    WITH_ROW_HASH,
    added_paths,
    grid_event_rows,
    incident_rows,
    listed_files,
    write_warehouse,
)

from pingan.core.storage import Store
from pingan.sharing import changes, delta, grant_reads, incremental
from pingan.sharing import manifest as mf
from pingan.sharing.partner import load_profile, pull
from pingan.sharing.provision import provision
from pingan.sharing.publish import COMPACT_EVERY_DAYS, compaction_due, publish
from pingan.sharing.server import create_app

TODAY = date(2025, 3, 5)
NIGHT1, NIGHT2, NIGHT3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
DATASET = "border_incidents"
PREFIX = mf.dataset_prefix("wujiang", DATASET)
WITHDRAWN = "310118:INC0000"  # a 1 March incident in Wujiang's grant, withdrawn before night 3
CHANGED = "310118:INC0006"  # a 1 March incident whose disposition changes before night 3


def night3_rows() -> list[tuple]:
    rows = []
    for row in incident_rows():
        if row[0] == WITHDRAWN:
            continue
        if row[0] == CHANGED:
            row = row[:18] + ("移送处理",) + row[19:]
        rows.append(row)
    return rows


@pytest.fixture
def hub(share_env, agreements_dir, tmp_path):
    settings, lake, shares = share_env

    def night(as_of: date, *, full: bool = False) -> dict:
        published = publish(settings, lake, shares, partners=["wujiang"], as_of=as_of,
                            agreements_dir=agreements_dir, today=TODAY, full=full)  # fmt: skip
        share = next(p for p in published if p.dataset == DATASET)
        pointer = json.loads(shares.get_bytes(PREFIX + mf.LATEST))
        manifest = json.loads(shares.get_bytes(PREFIX + pointer["manifest"]))
        assert manifest["snapshot_id"] == share.snapshot_id
        return manifest

    provision(settings, shares, backend="none", today=TODAY, agreements_dir=agreements_dir)
    profile = load_profile(settings.home / "partners" / "wujiang" / "pull-profile.json")
    dest = tmp_path / "wujiang-copy"

    def partner_pull():
        return next(p for p in pull(profile, dest, [DATASET]) if p.dataset == DATASET)

    return settings, shares, night, partner_pull, dest


def local_rows(dest) -> list[tuple]:
    with duckdb.connect(str(dest / "wujiang.duckdb"), read_only=True) as con:
        return con.sql(f"SELECT * FROM {DATASET} ORDER BY ALL").fetchall()


def hub_rows(shares) -> list[tuple]:
    table = delta.open_table(shares, PREFIX).to_pyarrow_table()
    con = duckdb.connect()
    con.register("t", table)
    return con.sql("SELECT * FROM t ORDER BY ALL").fetchall()


def added_rows(shares, manifest: dict) -> pa.Table:
    tables = [pq.read_table(pa.BufferReader(shares.get_bytes(PREFIX + p))) for p in added_paths(manifest)]
    return pa.concat_tables(tables)


def keys_read(monkeypatch, action):
    """What action returns, and every key it read from any store (the real reads, recorded)."""
    read, original = [], Store.get_bytes

    def get_bytes(store, key):
        read.append(key)
        return original(store, key)

    with monkeypatch.context() as patched:
        patched.setattr(Store, "get_bytes", get_bytes)
        return action(), read


def test_a_nights_pull_fetches_only_that_nights_files(hub, monkeypatch):
    settings, shares, night, partner_pull, dest = hub
    first = night(NIGHT1)
    assert first["write"]["mode"] == "full" and first["previous"] is None
    pulled = partner_pull()
    assert pulled.files_downloaded == len(listed_files(shares, first)) >= 1
    assert added_paths(first) == [f["path"] for f in listed_files(shares, first)]  # a full one adds all

    second = night(NIGHT2)
    assert second["write"]["mode"] == "merge"
    assert second["delta_version"] == first["delta_version"] + 1
    properties = delta.open_table(shares, PREFIX).metadata().configuration
    assert properties == {**properties, "delta.enableChangeDataFeed": "true",
                          "delta.logRetentionDuration": "interval 366 days"}  # fmt: skip
    assert second["previous"]["snapshot_id"] == first["snapshot_id"]
    assert second["previous"]["manifest_sha256"] == mf.sha256(
        shares.get_bytes(PREFIX + mf.SNAPSHOTS + first["snapshot_id"] + "/" + mf.MANIFEST)
    )
    assert second["listing"]["removed"] == []  # night 2 only added rows: no file of night 1 rewritten
    assert second["listing"]["since"] == first["snapshot_id"]
    new_rows = added_rows(shares, second)
    night2_incidents = {
        r[0] for r in incident_rows() if r[6].date() == NIGHT2 and r[12] and r[1] in ("310118", "320509")
    }
    assert new_rows.num_rows == len(night2_incidents) == second["write"]["rows_inserted"] > 0
    assert {t.astimezone(SHANGHAI).date() for t in new_rows["reported_at"].to_pylist()} == {
        NIGHT2
    }  # truncated to the hour: same day
    second_files = {f["path"] for f in listed_files(shares, second)}
    assert set(added_paths(second)) <= second_files
    assert {f["path"] for f in listed_files(shares, first)} <= second_files
    # the signed manifest names the night's files only: night 1's are in files.json, by its hash
    assert set(added_paths(second)).isdisjoint(added_paths(first)) and "files" not in second

    pulled, read = keys_read(monkeypatch, partner_pull)
    assert pulled.new and pulled.delta_version == second["delta_version"]
    assert pulled.files_downloaded == len(added_paths(second))  # night 1's files were not fetched again
    # nor read to be verified: the night's files are checked as they arrive, all of them on disk
    assert sorted(k for k in read if k.endswith(".parquet")) == sorted(
        PREFIX + p for p in added_paths(second)
    )
    # and the file list is rebuilt from the copy of night 1 and the manifest's change, not downloaded
    assert not [k for k in read if k.endswith(mf.LISTING)]
    assert pulled.manifest_bytes == len(
        shares.get_bytes(PREFIX + mf.SNAPSHOTS + second["snapshot_id"] + "/" + mf.MANIFEST)
    )
    night2_bytes = sum(f["bytes"] for f in second["listing"]["added"])
    assert pulled.bytes_downloaded == night2_bytes
    assert local_rows(dest) == hub_rows(shares)

    # a full re-snapshot of the same night holds the same rows as the merged table
    merged = hub_rows(shares)
    full = night(NIGHT2, full=True)
    assert full["write"]["mode"] == "full" and full["snapshot_id"] != second["snapshot_id"]
    assert hub_rows(shares) == merged
    # every file of a full write is new, but a month whose rows did not change is written byte for byte
    # as before (file_layout.py): the partner links it from its copy and downloads the others
    unchanged = {f["sha256"] for f in listed_files(shares, second)}
    full_files = listed_files(shares, full)
    assert partner_pull().files_downloaded == sum(f["sha256"] not in unchanged for f in full_files) >= 1
    assert local_rows(dest) == merged


def test_a_pull_after_a_missed_night_fetches_the_file_list_and_checks_it(hub, monkeypatch):
    settings, shares, night, partner_pull, dest = hub
    night(NIGHT1)
    partner_pull()
    night(NIGHT2)  # not pulled: the next manifest's change is since a snapshot this copy does not hold
    write_warehouse(settings.warehouse_path, night3_rows())
    third = night(NIGHT3)
    snapshot = PREFIX + mf.SNAPSHOTS + third["snapshot_id"] + "/"
    good = shares.get_bytes(snapshot + mf.LISTING)
    shares.put_bytes(snapshot + mf.LISTING, good.replace(b'"rows": ', b'"rows": 1', 1))  # altered
    with pytest.raises(mf.ManifestError, match="not the file list the manifest names"):
        partner_pull()
    assert not (dest / DATASET / third["snapshot_id"] / mf.SIGNATURE).exists()
    shares.put_bytes(snapshot + mf.LISTING, good)
    pulled, read = keys_read(monkeypatch, partner_pull)
    assert snapshot + mf.LISTING in read
    assert pulled.manifest_bytes == len(shares.get_bytes(snapshot + mf.MANIFEST)) + len(good)
    assert local_rows(dest) == hub_rows(shares)


def test_a_file_list_lost_on_either_side_costs_a_full_copy_never_a_stop(hub):
    settings, shares, night, partner_pull, dest = hub
    first = night(NIGHT1)
    partner_pull()
    # the hub's list of the current snapshot lost: the next publication writes a full snapshot (it wrote
    # the night's Delta version, then stopped on the list, for every later night)
    shares.delete(PREFIX + mf.SNAPSHOTS + first["snapshot_id"] + "/" + mf.LISTING)
    second = night(NIGHT2)
    assert second["write"]["mode"] == "full" and second["previous"] is None
    # the partner's list of its last copy lost: that copy is not reused, the new snapshot is fetched whole
    (dest / DATASET / first["snapshot_id"] / mf.LISTING).unlink()
    pulled = partner_pull()
    assert pulled.new and pulled.files_downloaded == len(listed_files(shares, second))
    assert local_rows(dest) == hub_rows(shares)


def test_a_withdrawn_row_disappears_and_a_changed_row_is_updated(hub):
    settings, shares, night, partner_pull, dest = hub
    night(NIGHT1)
    night(NIGHT2)
    partner_pull()
    before = len(local_rows(dest))
    write_warehouse(settings.warehouse_path, night3_rows())
    third = night(NIGHT3)
    assert third["write"]["mode"] == "merge"
    assert third["write"]["rows_deleted"] == 1 and third["write"]["rows_updated"] == 1
    assert third["listing"]["removed"]  # the file holding the withdrawn and the changed row was rewritten
    pulled = partner_pull()
    assert pulled.files_downloaded == len(added_paths(third)) < len(listed_files(shares, third)) + 1
    night3_new = sum(
        1 for r in incident_rows() if r[6].date() == NIGHT3 and r[12] and r[1] in ("310118", "320509")
    )
    rows = local_rows(dest)
    assert len(rows) == before + night3_new - 1
    assert rows == hub_rows(shares)
    with duckdb.connect(str(dest / "wujiang.duckdb"), read_only=True) as con:
        assert con.sql(f"SELECT count(*) FROM {DATASET} WHERE disposition = '移送处理'").fetchone()[0] == 1

    # the same content written from scratch
    incremental = hub_rows(shares)
    night(NIGHT3, full=True)
    assert hub_rows(shares) == incremental


def test_an_agreement_change_re_snapshots(hub, agreements_dir):
    _, _, night, _, _ = hub
    night(NIGHT1)
    path = agreements_dir / "wujiang.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["datasets"][DATASET]["columns"]["handling_unit"] = "drop"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    second = night(NIGHT2)
    assert second["write"]["mode"] == "full" and "agreement" in second["write"]["reason"]
    assert "handling_unit" not in [c["name"] for c in second["columns"]]


def test_a_night_with_no_change_writes_no_version(hub):
    _, shares, night, partner_pull, _ = hub
    third = night(NIGHT3)  # every incident of the fixture is on or before 3 March
    partner_pull()
    assert night(NIGHT3)["snapshot_id"] == third["snapshot_id"]  # a rerun: nothing written
    fourth = night(date(2025, 3, 4))  # a new snapshot, no row changed: no new Delta version
    assert fourth["write"]["mode"] == "unchanged" and fourth["snapshot_id"] != third["snapshot_id"]
    assert fourth["delta_version"] == third["delta_version"] == delta.open_table(shares, PREFIX).version()
    assert fourth["listing"]["added"] == [] and listed_files(shares, fourth) == listed_files(shares, third)
    pulled = partner_pull()
    assert pulled.new and pulled.files_downloaded == 0


def test_an_aggregate_without_a_key_merges_whole_rows(hub):
    settings, shares, night, _, _ = hub
    prefix = mf.dataset_prefix("wujiang", "cross_border_kpis")

    def kpis() -> tuple[dict, list[tuple]]:
        pointer = json.loads(shares.get_bytes(prefix + mf.LATEST))
        con = duckdb.connect()
        con.register("t", delta.open_table(shares, prefix).to_pyarrow_table())
        rows = con.sql("SELECT * FROM t ORDER BY ALL").fetchall()
        return json.loads(shares.get_bytes(prefix + pointer["manifest"])), rows

    night(NIGHT1)
    with duckdb.connect(str(settings.warehouse_path)) as con:  # the month's count grows, a row goes
        con.execute("UPDATE mart_cross_border SET activity_count = 9 WHERE subject = '金泽镇'")
        con.execute("DELETE FROM mart_cross_border WHERE subject = '黎里镇'")
    night(NIGHT2)
    manifest, merged = kpis()
    assert manifest["write"]["mode"] == "merge" and manifest["write"]["key"] is None
    assert manifest["write"]["rows_inserted"] == 1 and manifest["write"]["rows_deleted"] == 2
    assert ("2025-03-01", "border_town_incident", "310118", "金泽镇", "金泽镇", 9) in [
        (r[0].isoformat(), *r[1:]) for r in merged
    ]
    assert not any(r[3] == "黎里镇" for r in merged)
    night(NIGHT2, full=True)
    assert kpis()[1] == merged


def test_retention_re_snapshots_in_full(share_env, agreements_dir):
    settings, lake, shares = share_env
    retention = 365  # wujiang.yaml

    def night(as_of: date, today: date) -> dict:
        publish(settings, lake, shares, partners=["wujiang"], as_of=as_of, agreements_dir=agreements_dir,
                today=today)  # fmt: skip
        pointer = json.loads(shares.get_bytes(PREFIX + mf.LATEST))
        return json.loads(shares.get_bytes(PREFIX + pointer["manifest"]))

    first = night(NIGHT1, NIGHT1)
    assert night(NIGHT2, NIGHT2)["write"]["mode"] == "merge"
    third = night(NIGHT3, NIGHT1 + timedelta(days=retention + 1))  # the first snapshot is past retention
    assert third["write"] == {**third["write"], "mode": "full", "reason": "retention removed snapshots"}
    assert not shares.exists(PREFIX + mf.SNAPSHOTS + first["snapshot_id"] + "/" + mf.MANIFEST)
    assert night(date(2025, 3, 4), NIGHT1 + timedelta(days=retention + 1))["write"]["mode"] == "unchanged"
    # the next night the second snapshot expires too: a full write is younger than a month, so no
    # re-snapshot (one every night would make each night cost the whole history)
    second_gone = NIGHT2 + timedelta(days=retention + 1)
    assert night(date(2025, 3, 4), second_gone)["write"]["mode"] == "unchanged"
    assert not incremental.full_snapshot_asked(shares, "wujiang", DATASET)
    # a sweep compacts again once the last full write is more than a month old, or the pointer expired
    full = mf.read_manifest(third, "third")
    month = timedelta(days=COMPACT_EVERY_DAYS)
    assert not compaction_due([full], full.published_on + month, pointer_removed=False)
    assert compaction_due([full], full.published_on + month + timedelta(days=1), pointer_removed=False)
    assert compaction_due([full], full.published_on, pointer_removed=True)


@pytest.fixture
def served(hub, agreements_dir):
    settings, shares, night, _, _ = hub
    manifests = [night(NIGHT1), night(NIGHT2)]
    write_warehouse(settings.warehouse_path, night3_rows())
    manifests.append(night(NIGHT3))
    app = create_app(settings, agreements_dir=agreements_dir, today=lambda: TODAY)
    with running(app) as url:
        provision(settings, shares, backend="none", share_server_url=url, today=TODAY,
                  agreements_dir=agreements_dir)  # fmt: skip
        profiles = {p: str(settings.home / "partners" / p / f"{p}.share") for p in ("wujiang", "jiashan")}
        yield url, profiles, manifests


def bearer(profile_path: str) -> dict:
    with open(profile_path, encoding="utf-8") as fh:
        return {"Authorization": "Bearer " + json.load(fh)["bearerToken"]}


def test_server_answers_starting_version_with_only_the_new_files(served):
    url, profiles, manifests = served
    table = f"{url}/shares/wujiang/schemas/qingwujia/tables/{DATASET}"
    since = manifests[1]["delta_version"]
    response = requests.post(
        table + "/query", headers=bearer(profiles["wujiang"]), json={"startingVersion": since}
    )
    assert response.status_code == 200 and response.headers["delta-table-version"] == str(since)
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert list(lines[0]) == ["protocol"] and list(lines[1]) == ["metaData"]
    adds = [line["add"] for line in lines if "add" in line]
    expected = {f for m in manifests[1:] for f in added_paths(m)}
    assert {a["url"].rsplit("/", 1)[-1] for a in adds} and len(adds) == len(expected)
    assert {a["version"] for a in adds} == {m["delta_version"] for m in manifests[1:]}
    assert {a["size"] for a in adds} <= {f["bytes"] for m in manifests for f in m["listing"]["added"]}
    assert all(requests.get(a["url"]).status_code == 200 for a in adds)
    removes = [line["remove"] for line in lines if "remove" in line]
    assert len(removes) == len(manifests[2]["listing"]["removed"]) >= 1
    one = requests.post(table + "/query", headers=bearer(profiles["wujiang"]),
                        json={"startingVersion": since, "endingVersion": since})  # fmt: skip
    assert sum('"add"' in line for line in one.text.splitlines()) == len(added_paths(manifests[1]))
    too_early = requests.post(
        table + "/query", headers=bearer(profiles["wujiang"]), json={"startingVersion": 99}
    )
    assert too_early.status_code == 400


def test_stock_client_reads_the_change_data_feed(served):
    url, profiles, manifests = served
    table_url = profiles["wujiang"] + f"#wujiang.qingwujia.{DATASET}"
    changes = delta_sharing.load_table_changes_as_pandas(
        table_url, starting_version=manifests[1]["delta_version"]
    )
    night2 = changes[changes["_commit_version"] == manifests[1]["delta_version"]]
    assert set(night2["_change_type"]) == {"insert"} and len(night2) == manifests[1]["write"]["rows_inserted"]
    night3 = changes[changes["_commit_version"] == manifests[2]["delta_version"]]
    kinds = night3["_change_type"].value_counts().to_dict()
    assert kinds["delete"] == 1 and kinds["update_postimage"] == 1 and kinds["update_preimage"] == 1
    assert night3[night3["_change_type"] == "update_postimage"]["disposition"].tolist() == ["移送处理"]
    first = delta_sharing.load_table_changes_as_pandas(table_url, starting_version=0, ending_version=0)
    assert set(first["_change_type"]) == {"insert"} and len(first) == manifests[0]["rows"]


def test_another_partner_cannot_read_the_change_feed(served):
    url, profiles, _ = served
    path = f"/shares/wujiang/schemas/qingwujia/tables/{DATASET}/changes?startingVersion=0"
    assert requests.get(url + path, headers=bearer(profiles["jiashan"])).status_code == 404
    assert requests.get(url + path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert requests.get(url + path, headers=bearer(profiles["wujiang"])).status_code == 200
    query = f"/shares/wujiang/schemas/qingwujia/tables/{DATASET}/query"
    response = requests.post(url + query, headers=bearer(profiles["jiashan"]), json={"startingVersion": 0})
    assert response.status_code == 404
    with pytest.raises(Exception, match="404"):
        delta_sharing.load_table_changes_as_pandas(
            profiles["jiashan"] + f"#wujiang.qingwujia.{DATASET}", starting_version=0
        )


@pytest.mark.slow
def test_nights_merge_and_pull_incrementally_on_s3(home, s3_server, monkeypatch, agreements_dir, tmp_path):
    from pingan.core.settings import load_settings
    from pingan.core.storage import Store
    from pingan.sharing.publish import share_store

    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PINGAN_SHARE_URL", "s3://shares-incremental-test")
    monkeypatch.setenv("PINGAN_SHARE_SIGNING_KEY", "5e" * 32)
    monkeypatch.setenv("PINGAN_SHARE_RECIPIENT_KEY", "4b" * 32)
    for p in ("WUJIANG", "JIASHAN", "PINGHU", "JINSHAN"):
        monkeypatch.setenv(f"PINGAN_SHARE_KEY_{p}", "7c" * 32)
    settings = load_settings()
    write_warehouse(settings.warehouse_path, incident_rows())
    lake, shares = Store(settings.lake_url), share_store(settings)
    lake.ensure()
    provision(settings, shares, backend="none", today=TODAY, agreements_dir=agreements_dir)
    profile = load_profile(settings.home / "partners" / "wujiang" / "pull-profile.json")
    # the partner's own S3 user is provisioned by `partners provision --backend minio` (tested elsewhere):
    # here the pull reads with the hub's credentials
    hub_keys = {"access_key": settings.s3.access_key, "secret_key": settings.s3.secret_key}
    profile = profile.model_copy(update={"s3": profile.s3.model_copy(update=hub_keys)})

    def night(as_of: date) -> dict:
        publish(settings, lake, shares, partners=["wujiang"], as_of=as_of, agreements_dir=agreements_dir,
                today=TODAY)  # fmt: skip
        pointer = json.loads(shares.get_bytes(PREFIX + mf.LATEST))
        return json.loads(shares.get_bytes(PREFIX + pointer["manifest"]))

    dest = tmp_path / "copy"
    night(NIGHT1)
    pull(profile, dest, [DATASET])
    second = night(NIGHT2)
    assert second["write"]["mode"] == "merge" and second["change_files"]
    pulled = pull(profile, dest, [DATASET])[0]
    assert pulled.files_downloaded == len(added_paths(second)) >= 1
    write_warehouse(settings.warehouse_path, night3_rows())
    third = night(NIGHT3)
    assert third["write"]["rows_deleted"] == 1
    pull(profile, dest, [DATASET])
    assert local_rows(dest) == hub_rows(shares)


# --- a night prepares only the rows that changed (pingan/sharing/changes.py) ------------------------------
OVERDUE = "310118:GE0000"  # a grid event in Wujiang's grant that turns overdue: same batch, new value
LEFT_GRANT = "310118:GE0006"  # a grid event re-delivered as not cross-border: it leaves the grant


def night3_grid_events() -> list[tuple]:
    rows = []
    for row in grid_event_rows():
        if row[0] == OVERDUE:
            row = row[:16] + (True,) + row[17:]
        elif row[0] == LEFT_GRANT:
            row = row[:8] + (False,) + row[9:21] + ("ge-batch-rerun",) + row[22:]
        rows.append(row)
    return rows


def rerun_batch(rows: list[tuple], old: str, new: str) -> list[tuple]:
    """The rows as a rerun of their batch delivers them: the same content under a new batch id."""
    return [row[:22] + (new,) + row[23:] if row[22] == old else row for row in rows]


def wujiang_tables(shares) -> dict[str, list[tuple]]:
    out = {}
    for dataset in (
        "border_incidents",
        "cross_border_grid_events",
        "checkpoint_activity",
        "cross_border_kpis",
    ):
        con = duckdb.connect()
        con.register("t", delta.open_table(shares, mf.dataset_prefix("wujiang", dataset)).to_pyarrow_table())
        out[dataset] = con.sql("SELECT * FROM t ORDER BY ALL").fetchall()
    return out


def latest_write(shares, dataset: str) -> dict:
    prefix = mf.dataset_prefix("wujiang", dataset)
    pointer = json.loads(shares.get_bytes(prefix + mf.LATEST))
    manifest = json.loads(shares.get_bytes(prefix + pointer["manifest"]))
    return {**manifest["write"], "snapshot_id": manifest["snapshot_id"], "rows": manifest["rows"]}


@pytest.mark.parametrize(
    "days_read,source_hash",
    [("whole rows of the days", "columns"), ("keys, then the changed rows", "columns"),
     ("whole rows of the days", "row_hash")],
)  # fmt: skip
def test_nights_of_changed_rows_equal_a_full_publication(hub, days_read, source_hash, monkeypatch):
    """Either way of reading the days that differ (their whole rows once, or, past grant_reads.DaysRead.MAX_DAYS,
    their keys and hashes and then only the changed rows) publishes the same nights; and so does a warehouse
    whose facts carry the build's row_hash (the source hash is then that column, not a hash of the granted
    columns)."""
    if days_read.startswith("keys"):
        monkeypatch.setattr(grant_reads.DaysRead, "MAX_DAYS", 0)
    monkeypatch.setitem(WITH_ROW_HASH, "on", source_hash == "row_hash")
    settings, shares, night, _, _ = hub
    write_warehouse(settings.warehouse_path, incident_rows())  # as the fixture's, with row_hash or not
    night(NIGHT1)
    assert latest_write(shares, DATASET)["changes_only"] is False  # the first snapshot: everything
    second = night(NIGHT2)
    write = second["write"]
    night2_incidents = sum(
        1 for r in incident_rows() if r[6].date() == NIGHT2 and r[12] and r[1] in ("310118", "320509")
    )
    assert write["changes_only"] and write["mode"] == "merge"
    assert write["rows_prepared"] == write["rows_inserted"] == night2_incidents < second["rows"]
    assert night(NIGHT2)["snapshot_id"] == second["snapshot_id"]  # a rerun of the night writes nothing

    # night 3: an incident withdrawn, one changed, a grid event turns overdue (same batch), one leaves the grant
    write_warehouse(settings.warehouse_path, night3_rows(), night3_grid_events())
    night(NIGHT3)
    incidents, events = latest_write(shares, DATASET), latest_write(shares, "cross_border_grid_events")
    assert incidents["changes_only"] and (incidents["rows_deleted"], incidents["rows_updated"]) == (1, 1)
    night3_incidents = sum(
        1 for r in incident_rows() if r[6].date() == NIGHT3 and r[12] and r[1] in ("310118", "320509")
    )
    assert incidents["rows_prepared"] == night3_incidents + 1 == incidents["rows_inserted"] + 1
    assert events["changes_only"] and (events["rows_updated"], events["rows_deleted"]) == (1, 1)
    assert events["rows_prepared"] == 1 + events["rows_inserted"]

    # night 4: a rerun of 1 March's batch delivers the same rows under a new batch id: nothing to prepare
    write_warehouse(
        settings.warehouse_path, rerun_batch(night3_rows(), "batch-0", "batch-0-rerun"), night3_grid_events()
    )
    night(date(2025, 3, 4))
    # (with the build's row_hash, which covers the batch id, the rerun's rows are treated again and found
    # to publish the same rows: nothing is written either way)
    assert latest_write(shares, DATASET)["mode"] == "unchanged"
    assert latest_write(shares, DATASET)["rows_prepared"] == 0
    assert changes.read_state(shares, "wujiang", DATASET).source_hash_of == source_hash
    incremental = wujiang_tables(shares)
    before = {d: latest_write(shares, d) for d in incremental}

    night(date(2025, 3, 4), full=True)  # the same state published from scratch
    assert wujiang_tables(shares) == incremental
    after = {d: latest_write(shares, d) for d in incremental}
    assert {d: w["rows"] for d, w in after.items()} == {d: w["rows"] for d, w in before.items()}
    assert all(w["mode"] == "full" and not w["changes_only"] for w in after.values())
    with duckdb.connect() as con:
        con.register(
            "t",
            delta.open_table(
                shares, mf.dataset_prefix("wujiang", "cross_border_grid_events")
            ).to_pyarrow_table(),
        )
        assert con.sql("SELECT count(*) FROM t WHERE is_overdue").fetchone()[0] == 1


def test_a_state_that_does_not_match_the_pointer_prepares_the_whole_history(hub):
    settings, shares, night, _, _ = hub
    night(NIGHT1)
    shares.delete(changes.state_key("wujiang", DATASET))  # e.g. a crash after the pointer moved
    second = night(NIGHT2)
    assert not second["write"]["changes_only"] and second["write"]["mode"] == "merge"
    assert second["write"]["rows_prepared"] == second["rows"]
    write_warehouse(settings.warehouse_path, night3_rows())
    third = night(NIGHT3)
    assert third["write"]["changes_only"] and third["write"]["rows_deleted"] == 1
    merged = hub_rows(shares)
    night(NIGHT3, full=True)
    assert hub_rows(shares) == merged


def test_joint_operations_merge_by_their_row_key(share_env, agreements_dir):
    """A grant with several key_per_partnership columns (a row's own id beside the ids it links to) names
    its row key: a night merges only the new operation instead of preparing the whole history."""
    settings, lake, shares = share_env
    prefix = mf.dataset_prefix("pinghu", "joint_operations")

    def night(as_of: date, *, full: bool = False) -> dict:
        publish(settings, lake, shares, partners=["pinghu"], as_of=as_of, agreements_dir=agreements_dir,
                today=TODAY, full=full)  # fmt: skip
        pointer = json.loads(shares.get_bytes(prefix + mf.LATEST))
        return json.loads(shares.get_bytes(prefix + pointer["manifest"]))

    def published() -> list[tuple]:
        table = delta.open_table(shares, prefix).to_pyarrow_table()
        return sorted(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))

    assert not night(NIGHT1)["write"]["changes_only"]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("""INSERT INTO fct_joint_operations VALUES
            ('310116:OP2', '310116', 'pinghu_jinshan_joint_operations', 'OP2', '联防', 'joint_patrol',
             DATE '2025-03-02', '廊下镇—广陈镇交界', '巡逻完成', '310116:J3', '310116', '廊下镇',
             '廊下派出所', '330482', '广陈镇', '广陈派出所', 'op.csv', 'b-op2', TIMESTAMPTZ '2025-03-03 02:00:00+08')""")
    second = night(NIGHT2)
    assert second["write"]["changes_only"] and second["write"]["mode"] == "merge"
    assert (second["write"]["rows_prepared"], second["write"]["rows_inserted"], second["rows"]) == (1, 1, 2)
    merged = published()
    night(NIGHT2, full=True)
    assert published() == merged and len(merged) == 2


def test_a_row_key_must_be_a_keyed_column(agreements_dir):
    from pingan.sharing.agreements import AgreementError, load_agreements

    path = agreements_dir / "pinghu.yaml"
    path.write_text(path.read_text().replace("row_key: record_id", "row_key: mechanism"))
    with pytest.raises(
        AgreementError, match=r"pinghu.yaml: datasets.joint_operations: .*row_key 'mechanism' must"
    ):
        load_agreements(agreements_dir)
