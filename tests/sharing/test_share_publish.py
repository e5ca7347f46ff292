"""Partner shares: Delta snapshots in the share store, PII guard, keyed ids, expiry, retention, tampering."""

from __future__ import annotations

import json
import os
import stat
from datetime import date, timedelta

import pyarrow as pa
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from share_fixtures import (
    AS_OF,
    PARTY_NAMES,
    grid_event_rows,
    incident_rows,
    listed_files,
    mobile,
    resident_id,
    write_warehouse,
)

from pingan.core import audit
from pingan.core.storage import Store
from pingan.sharing import delta
from pingan.sharing import manifest as mf
from pingan.sharing.detectors import MASKS
from pingan.sharing.keys import ShareKeyError, public_key_id
from pingan.sharing.pii_guard import PiiGuardError, scan
from pingan.sharing.publish import ShareError, ShareTamperedError, publish

TODAY = date(2025, 3, 3)  # the real date the tests pretend it is


def read_share(shares: Store, share) -> list[dict]:
    prefix = mf.dataset_prefix(share.partner, share.dataset)
    return pa.table(delta.open_table(shares, prefix, share.delta_version).to_pyarrow_table()).to_pylist()


def hub_keys(shares: Store, partner: str) -> dict:
    key = load_pem_public_key(shares.get_bytes(f"share/{partner}/signing_key.pub.pem"))
    return {public_key_id(key): key}


def verify(shares: Store, partner: str, dataset: str, snapshot_id: str) -> dict:
    return mf.verify_snapshot(
        shares.get_bytes, mf.snapshot_prefix(partner, dataset, snapshot_id) + mf.MANIFEST,
        mf.dataset_prefix(partner, dataset), hub_keys(shares, partner), partner=partner, dataset=dataset,
    )  # fmt: skip


def edit_agreement(directory, partner: str, change) -> None:
    path = directory / f"{partner}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def run(env, agreements_dir, *, as_of=AS_OF, today=TODAY, partners=None):
    settings, lake, shares = env
    return publish(settings, lake, shares, partners=partners, as_of=as_of, agreements_dir=agreements_dir,
                   today=today)  # fmt: skip


def events(shares: Store) -> list[tuple]:
    return [(e["event"], e["partner"], e["dataset"]) for e in audit.entries(shares)]


def test_shares_live_in_their_own_store(share_env, agreements_dir):
    settings, lake, shares = share_env
    run(share_env, agreements_dir, partners=["wujiang"])
    assert shares.url != lake.url and lake.list("share/") == [] and lake.list("audit/") == []
    assert not shares.url.startswith(lake.url + "/") and settings.warehouse_path.parent != shares.root


def test_wujiang_receives_its_datasets_verifiable_and_pseudonymised(share_env, agreements_dir):
    _, _, shares = share_env
    got = {s.dataset: s for s in run(share_env, agreements_dir, partners=["wujiang"])}
    assert set(got) == {
        "border_incidents",
        "cross_border_grid_events",
        "checkpoint_activity",
        "cross_border_kpis",
    }
    rows = read_share(shares, got["border_incidents"])
    expected = [r for r in incident_rows() if r[12] and r[1] in ("310118", "320509") and r[6].date() <= AS_OF]
    assert len(rows) == got["border_incidents"].rows == len(expected) > 0
    assert {r["town"] for r in rows} == {"金泽镇", "黎里镇"}
    assert "address" not in rows[0] and "source_file" not in rows[0] and "batch_id" not in rows[0]
    assert all(round(r["latitude"], 2) == r["latitude"] for r in rows)
    assert all(r["caller_phone"].startswith("p_") for r in rows)
    assert all(r["record_id"].split(":")[1].startswith("k_") for r in rows)
    assert all(r["reported_at"].minute == 0 and r["reported_at"].second == 0 for r in rows)
    grid = read_share(shares, got["cross_border_grid_events"])
    assert grid and all(r["parties"].startswith("p_") for r in grid)
    assert {r["subject"] for r in read_share(shares, got["checkpoint_activity"])} == {"CP-QP-01", "CP-WJ-01"}

    manifest = verify(shares, "wujiang", "border_incidents", got["border_incidents"].snapshot_id)
    assert manifest["rows"] == len(rows) and manifest["agreement"]["version"] == 2
    snapshot = mf.snapshot_prefix("wujiang", "border_incidents", got["border_incidents"].snapshot_id)
    assert mf.read_sources(shares.get_bytes, snapshot, manifest)["batch_ids"] == sorted(
        {r[22] for r in expected}
    )
    assert manifest["quality"]["pii_guard"] == "passed" and manifest["delta_version"] == 0
    assert manifest["treatments"]["record_id"] == "key_per_partnership"
    latest = json.loads(shares.get_bytes("share/wujiang/border_incidents/latest.json"))
    assert latest["snapshot_id"] == manifest["snapshot_id"] and latest["sequence"] == 1


def test_no_raw_id_phone_or_name_leaves_the_hub(share_env, agreements_dir):
    _, _, shares = share_env
    published = run(share_env, agreements_dir)
    assert {s.partner for s in published} == {"wujiang", "jiashan", "pinghu", "jinshan"}
    raw_values = {mobile(i) for i in range(5)} | {resident_id(i) for i in range(200)} | set(PARTY_NAMES)
    for share in published:
        table = delta.open_table(shares, mf.dataset_prefix(share.partner, share.dataset)).to_pyarrow_table()
        assert scan(pa.table(table)) == [], share
    for key in shares.list("share/"):
        text = shares.get_bytes(key).decode("utf-8", "replace")
        assert not any(v in text for v in raw_values), key


def test_no_identifier_links_rows_across_partnerships(share_env, agreements_dir):
    """Wujiang and Jiashan both get Qingpu's border rows: their ids and pseudonyms must not pair them."""
    _, _, shares = share_env
    published = run(share_env, agreements_dir, partners=["wujiang", "jiashan"])
    values: dict[str, set] = {}
    for share in published:
        if share.dataset in ("border_incidents", "cross_border_grid_events"):
            for row in read_share(shares, share):
                for column in ("record_id", "event_id", "caller_phone", "involved_id_numbers", "parties"):
                    if row.get(column):
                        values.setdefault(share.partner, set()).update(row[column].split(";"))
    assert values["wujiang"] and values["jiashan"]
    assert values["wujiang"] & values["jiashan"] == set()


def test_pseudonyms_are_stable_within_a_partnership(share_env, agreements_dir):
    _, _, shares = share_env
    first = {s.dataset: s for s in run(share_env, agreements_dir, partners=["wujiang"])}
    later = {
        s.dataset: s for s in run(share_env, agreements_dir, partners=["wujiang"], as_of=date(2025, 3, 3))
    }
    a = {r["record_id"]: r["caller_phone"] for r in read_share(shares, first["border_incidents"])}
    b = {r["record_id"]: r["caller_phone"] for r in read_share(shares, later["border_incidents"])}
    assert a and len(b) > len(a) and all(b[k] == v for k, v in a.items())
    assert later["border_incidents"].delta_version == 1  # a new Delta version: time travel to the first
    assert len(read_share(shares, first["border_incidents"])) == len(a)


def test_a_configured_key_is_used_and_never_written_or_logged(share_env, agreements_dir, monkeypatch, caplog):
    settings, _, shares = share_env
    key = "a1" * 32
    monkeypatch.setenv("PINGAN_SHARE_KEY_WUJIANG", key)
    with caplog.at_level("DEBUG"):
        run(share_env, agreements_dir, partners=["wujiang"])
    assert not (settings.home / "secrets" / "share_key_wujiang.hex").exists()
    signing_file = settings.home / "secrets" / "share_signing_key.pem"
    assert stat.S_IMODE(os.stat(signing_file).st_mode) == 0o600  # generated for the embedded default
    assert key not in caplog.text and "PRIVATE KEY" not in caplog.text
    assert all(key not in shares.get_bytes(k).decode("utf-8", "replace") for k in shares.list())


@pytest.mark.parametrize(
    ("column", "rule", "change"),
    [
        ("caller_phone", "pii_column_unprotected",
         lambda a: a["datasets"]["border_incidents"]["columns"].update(caller_phone="keep")),
        ("dispatch_to_arrival_seconds", "mobile", None),  # a phone number stored in a numeric column
    ],
)  # fmt: skip
def test_pii_guard_holds_back_only_the_dataset_where_it_found_something(
    share_env, agreements_dir, column, rule, change
):
    settings, _, shares = share_env
    rows = incident_rows()
    if column == "dispatch_to_arrival_seconds":
        rows[0] = rows[0][:10] + (int(mobile(3)),) + rows[0][11:]
    write_warehouse(settings.warehouse_path, rows)
    dataset = "border_incidents"
    if change:
        edit_agreement(agreements_dir, "wujiang", change)

    with pytest.raises(PiiGuardError) as err:
        run(share_env, agreements_dir)
    message = str(err.value)
    assert f"partner wujiang, dataset {dataset}, column {column}: rule {rule}" in message
    assert mobile(3) not in message
    held = set(err.value.held_back)
    assert ("wujiang", dataset) in held and {d for _, d in held} == {dataset}  # only where the row went
    written = {tuple(k.split("/")[1:3]) for k in shares.list("share/") if k.count("/") >= 3}
    assert not written & held  # held back: nothing of them written
    assert {d for p, d in written if p == "wujiang"} - {dataset}  # wujiang's other datasets published
    assert {p for p, _ in written} >= {"pinghu", "jinshan"}  # and the other partners'
    blocked = [e for e in audit.entries(shares) if e["event"] == "pii_guard_blocked"]
    assert {(e["partner"], e["detail"]["column"], e["detail"]["rule"]) for e in blocked} >= {
        ("wujiang", column, rule)
    }
    assert all(mobile(3) not in json.dumps(e, ensure_ascii=False) for e in blocked)  # never values
    if rule != "pii_column_unprotected":  # a value rule names the offending rows by their share keys
        assert all(k.startswith("310118:k_") for e in blocked for k in e["detail"]["keys"])


@pytest.mark.parametrize(
    ("column", "kind", "change"),
    [
        ("address", "resident_id", lambda a: a["datasets"]["border_incidents"]["columns"].update(address="keep")),
        ("disposition", "mobile", None),
        ("handling_unit", "person_name", None),
    ],
)  # fmt: skip
def test_free_text_is_redacted_with_typed_masks_counted_in_the_manifest(
    share_env, agreements_dir, column, kind, change
):
    settings, _, shares = share_env
    rows = incident_rows()
    leaked = {"resident_id": resident_id(7), "mobile": "+86 " + mobile(3), "person_name": PARTY_NAMES[1]}[
        kind
    ]
    if kind == "resident_id":  # an ID number typed into the address
        rows[0] = rows[0][:16] + (f"金泽镇人民路1号 当事人{leaked}",) + rows[0][17:]
    if kind == "mobile":  # a phone number with the country code in the free-text disposition
        rows[0] = rows[0][:18] + (f"已联系报警人{leaked}",) + rows[0][19:]
    write_warehouse(settings.warehouse_path, rows)
    dataset = "border_incidents"
    if kind == "person_name":  # a party named in the batch's PII column, typed into the grid event's unit
        _commit_grid_batch(share_env)
        grid = grid_event_rows()
        grid[0] = grid[0][:19] + (f"{PARTY_NAMES[1]}调解室",) + grid[0][20:]
        write_warehouse(settings.warehouse_path, rows, grid)
        dataset = "cross_border_grid_events"
    if change:
        edit_agreement(agreements_dir, "wujiang", change)

    published = [s for s in run(share_env, agreements_dir) if s.partner == "wujiang" and s.dataset == dataset]
    values = [r[column] for r in read_share(shares, published[0])]
    assert not any(leaked in (v or "") for v in values)
    assert sum(MASKS[kind] in (v or "") for v in values) == 1
    manifest = json.loads(
        shares.get_bytes(mf.snapshot_prefix("wujiang", dataset, published[0].snapshot_id) + mf.MANIFEST)
    )
    assert manifest["redactions"] == {column: {kind: 1}}


def _commit_grid_batch(env) -> None:
    """A committed raw-zone grid-event batch (the fixture's rows carry batch_id ge-batch-0/1)."""
    from pingan import raw_zone

    _, lake, _ = env
    for day, batch in ((1, "ge-batch-0"), (2, "ge-batch-1")):
        key = f"raw/grid_event/jurisdiction=310118/load_date=2025-03-0{day}/feed=qingpu_grid_events/batch={batch}/p.parquet"
        lake.write_parquet(key, pa.table({"parties": [";".join(PARTY_NAMES)], "event_id": ["x"]}))
        raw_zone.commit(lake, {
            "feed": "qingpu_grid_events", "entity": "grid_event_stage", "jurisdiction_code": "310118",
            "load_date": f"2025-03-0{day}", "batch_id": batch,
            "status": "committed", "rows_read": 1, "rows_written": 1, "rows_quarantined": 0,
            "quarantine_by_rule": {}, "files": {"raw": [key], "quarantine": []},
        })  # fmt: skip


def test_source_batch_quality_is_in_the_manifest(share_env, agreements_dir):
    _commit_grid_batch(share_env)
    _, _, shares = share_env
    share = next(
        s
        for s in run(share_env, agreements_dir, partners=["wujiang"])
        if s.dataset == "cross_border_grid_events"
    )
    manifest = verify(shares, "wujiang", share.dataset, share.snapshot_id)
    # the cross-border rows all come from ge-batch-0
    source = mf.read_sources(
        shares.get_bytes, mf.snapshot_prefix("wujiang", share.dataset, share.snapshot_id), manifest
    )
    assert {b["batch_id"]: b["status"] for b in source["batches"]} == {"ge-batch-0": "committed"}
    assert manifest["quality"]["source_batches"]["rows_quarantined"] == 0


def test_expiry_uses_the_real_date_and_withdraws_latest(share_env, agreements_dir):
    _, _, shares = share_env
    run(share_env, agreements_dir, partners=["jinshan"])
    assert shares.exists("share/jinshan/joint_operations/latest.json")
    edit_agreement(agreements_dir, "jinshan", lambda a: a.update(expires_on="2025-03-02"))
    # a backfill for a date the agreement still covered, run after it really expired: nothing published
    assert run(share_env, agreements_dir, partners=["jinshan"], as_of=date(2025, 3, 1)) == []
    assert not any(k.endswith("latest.json") for k in shares.list("share/jinshan/"))
    assert ("withdrawn", "jinshan", "joint_operations") in events(shares)
    assert ("skipped_ended", "jinshan", None) in events(shares)


def test_retention_removes_old_snapshots_and_audits_it(share_env, agreements_dir):
    _, _, shares = share_env
    old = {s.dataset: s for s in run(share_env, agreements_dir, partners=["wujiang"], today=date(2025, 3, 2))}
    old_id = old["border_incidents"].snapshot_id
    old_files = [
        f["path"] for f in listed_files(shares, verify(shares, "wujiang", "border_incidents", old_id))
    ]
    today = date(2025, 3, 2) + timedelta(days=457)
    new = {s.dataset: s for s in run(share_env, agreements_dir, partners=["wujiang"], as_of=date(2025, 3, 3),
                                     today=today)}  # fmt: skip
    remaining = shares.list("share/wujiang/border_incidents/")
    assert not any(old_id in k for k in remaining)
    assert old_files and not any(k.endswith(f) for f in old_files for k in remaining)
    assert ("removed_retention", "wujiang", "border_incidents") in events(shares)
    verify(shares, "wujiang", "border_incidents", new["border_incidents"].snapshot_id)


def test_retention_removes_nothing_while_a_file_list_cannot_be_read(share_env, agreements_dir):
    # the expired snapshot's files.json altered: deleting its folder would leave its data files named by
    # nothing, past retention for good; it stays until the list is repaired, then goes with its files
    _, _, shares = share_env
    old = {s.dataset: s for s in run(share_env, agreements_dir, partners=["wujiang"], today=date(2025, 3, 2))}
    old_id = old["border_incidents"].snapshot_id
    listing = mf.snapshot_prefix("wujiang", "border_incidents", old_id) + mf.LISTING
    good = shares.get_bytes(listing)
    old_files = [f["path"] for f in json.loads(good)["files"]]
    shares.put_bytes(listing, good.replace(b'"rows": ', b'"rows": 1', 1))
    today = date(2025, 3, 2) + timedelta(days=457)
    new = {s.dataset: s for s in run(share_env, agreements_dir, partners=["wujiang"], as_of=date(2025, 3, 3),
                                     today=today)}  # fmt: skip
    verify(shares, "wujiang", "border_incidents", new["border_incidents"].snapshot_id)  # a full one
    remaining = shares.list("share/wujiang/border_incidents/")
    assert any(old_id in k for k in remaining) and all(
        any(k.endswith(f) for k in remaining) for f in old_files
    )
    shares.put_bytes(listing, good)
    run(share_env, agreements_dir, partners=["wujiang"], as_of=date(2025, 3, 3), today=today)
    remaining = shares.list("share/wujiang/border_incidents/")
    assert not any(old_id in k for k in remaining)
    assert not any(k.endswith(f) for f in old_files for k in remaining)


def test_rerun_is_idempotent_and_latest_never_moves_back(share_env, agreements_dir):
    _, _, shares = share_env
    first = run(share_env, agreements_dir)
    keys, log_length = shares.list("share/"), len(audit.entries(shares))
    again = run(share_env, agreements_dir)
    assert [s.snapshot_id for s in again] == [s.snapshot_id for s in first]
    assert not any(s.created for s in again)
    assert shares.list("share/") == keys and len(audit.entries(shares)) == log_length

    later = run(share_env, agreements_dir, partners=["wujiang"], as_of=date(2025, 3, 3))
    run(share_env, agreements_dir, partners=["wujiang"], as_of=date(2025, 3, 1))  # backfill
    latest = json.loads(shares.get_bytes("share/wujiang/border_incidents/latest.json"))
    assert latest["snapshot_id"] == later[0].snapshot_id and latest["sequence"] == 2


def test_a_rerun_finds_a_tampered_snapshot_and_says_so(share_env, agreements_dir):
    _, _, shares = share_env
    share = run(share_env, agreements_dir, partners=["pinghu"])[0]
    manifest = verify(shares, "pinghu", share.dataset, share.snapshot_id)
    data_key = mf.dataset_prefix("pinghu", share.dataset) + listed_files(shares, manifest)[0]["path"]
    data = bytearray(shares.get_bytes(data_key))
    data[-20] ^= 0xFF
    shares.put_bytes(data_key, bytes(data))
    with pytest.raises(mf.ManifestError, match="sha256"):
        verify(shares, "pinghu", share.dataset, share.snapshot_id)
    with pytest.raises(
        ShareTamperedError, match=rf"pinghu/joint_operations snapshot {share.snapshot_id}.*sha256"
    ):
        run(share_env, agreements_dir, partners=["pinghu"])
    assert ("tamper_detected", "pinghu", "joint_operations") in events(shares)

    key = mf.snapshot_prefix("pinghu", share.dataset, share.snapshot_id) + mf.MANIFEST
    forged = json.loads(shares.get_bytes(key))
    forged["rows"] = 99
    shares.put_bytes(key, mf.encode(forged))
    with pytest.raises(mf.ManifestError, match="signature"):
        verify(shares, "pinghu", share.dataset, share.snapshot_id)


def test_a_rerun_finds_a_tampered_latest_pointer(share_env, agreements_dir):
    _, _, shares = share_env
    run(share_env, agreements_dir, partners=["jinshan"])
    key = "share/jinshan/joint_operations/latest.json"
    pointer = json.loads(shares.get_bytes(key))
    pointer["sequence"] = 42
    shares.put_bytes(key, mf.encode(pointer))
    with pytest.raises(
        ShareTamperedError, match=r"jinshan/joint_operations .*latest.json: signature does not verify"
    ):
        run(share_env, agreements_dir, partners=["jinshan"])


def test_missing_column_or_partner_is_a_clear_error(share_env, agreements_dir):
    with pytest.raises(ShareError, match="no agreement for partner"):
        run(share_env, agreements_dir, partners=["hangzhou"])
    edit_agreement(
        agreements_dir, "pinghu",
        lambda a: a["datasets"]["joint_operations"]["columns"].update(no_such_column="keep"),
    )  # fmt: skip
    with pytest.raises(ShareError, match=r"partner pinghu, dataset joint_operations .*no_such_column"):
        run(share_env, agreements_dir, partners=["pinghu"])


def test_an_s3_deployment_needs_its_keys_configured(home, s3_server, share_env, agreements_dir, monkeypatch):
    settings, lake, _ = share_env
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    from pingan.core.settings import load_settings
    from pingan.sharing.publish import share_store

    # prod never generates a key (the key policy is the deployment's, pingan.core.settings)
    settings = load_settings(
        {**os.environ, "PINGAN_SHARE_URL": "s3://shares-keys-test", "PINGAN_DEPLOYMENT": "prod"}
    )
    shares = share_store(settings)
    env = (settings, lake, shares)
    with pytest.raises(ShareKeyError, match="PINGAN_SHARE_SIGNING_KEY"):
        run(env, agreements_dir, partners=["wujiang"])
    monkeypatch.setenv("PINGAN_SHARE_SIGNING_KEY", "5e" * 32)
    with pytest.raises(ShareKeyError, match="PINGAN_SHARE_KEY_WUJIANG"):
        run(env, agreements_dir, partners=["wujiang"])
    monkeypatch.setenv("PINGAN_SHARE_KEY_WUJIANG", "7c" * 32)
    share = run(env, agreements_dir, partners=["wujiang"])[0]
    assert share.path.startswith("s3://shares-keys-test/share/wujiang/")
    verify(shares, "wujiang", share.dataset, share.snapshot_id)
    assert len(read_share(shares, share)) == share.rows > 0
    assert not (settings.home / "secrets").exists()
