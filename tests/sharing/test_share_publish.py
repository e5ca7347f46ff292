"""Partner shares: pseudonyms, the PII guard, signed manifests, pointer order, expiry, idempotence."""

from __future__ import annotations

import json
import os
import stat
from datetime import date

import pyarrow.parquet as pq
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from share_fixtures import AS_OF, incident_rows, mobile, resident_id, write_warehouse

from pingan.sharing import manifest as mf
from pingan.sharing.keys import ShareKeyError
from pingan.sharing.pii_guard import PiiGuardError, scan
from pingan.sharing.publish import ShareError, publish
from pingan.storage import Store


def read_share(lake: Store, share) -> list[dict]:
    prefix = mf.snapshot_prefix(share.partner, share.dataset, share.snapshot_id)
    return pq.read_table(lake.uri(prefix + "part-0.parquet")).to_pylist()


def public_key(lake: Store, partner: str):
    return load_pem_public_key(lake.get_bytes(f"share/{partner}/signing_key.pub.pem"))


def edit_agreement(directory, partner: str, change) -> None:
    path = directory / f"{partner}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_wujiang_receives_its_border_incidents_verifiable_and_pseudonymised(share_env, agreements_dir):
    settings, lake = share_env
    shares = publish(settings, lake, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir)

    assert [(s.partner, s.dataset, s.created) for s in shares] == [("wujiang", "border_incidents", True)]
    rows = read_share(lake, shares[0])
    expected = [r for r in incident_rows() if r[12] and r[1] in ("310118", "320509") and r[6].date() <= AS_OF]
    assert len(rows) == shares[0].rows == len(expected) > 0
    assert {r["town"] for r in rows} == {"金泽镇", "黎里镇"}
    assert "address" not in rows[0] and "source_file" not in rows[0] and "batch_id" not in rows[0]
    assert all(round(r["latitude"], 2) == r["latitude"] for r in rows)
    assert all(r["caller_phone"].startswith("p_") for r in rows)
    assert all(len(r["involved_id_numbers"].split(";")) == 2 for r in rows)

    manifest = mf.verify_snapshot(
        lake,
        mf.snapshot_prefix("wujiang", "border_incidents", shares[0].snapshot_id),
        public_key(lake, "wujiang"),
    )
    assert manifest["rows"] == len(rows) and manifest["agreement"]["version"] == 1
    assert manifest["source"]["batch_ids"] == sorted({r[22] for r in expected})
    assert manifest["treatments"]["caller_phone"] == "pseudonymise"
    latest = json.loads(lake.get_bytes("share/wujiang/border_incidents/latest.json"))
    assert latest["snapshot_id"] == shares[0].snapshot_id


def test_no_raw_id_or_phone_leaves_the_hub(share_env, agreements_dir):
    settings, lake = share_env
    shares = publish(settings, lake, as_of=AS_OF, agreements_dir=agreements_dir)
    assert {s.partner for s in shares} == {"wujiang", "jiashan", "pinghu", "jinshan"}
    raw_values = {mobile(i) for i in range(5)} | {resident_id(i) for i in range(200)}
    for key in lake.list("share/"):
        blob = lake.get_bytes(key)
        if key.endswith(".parquet"):
            table = pq.read_table(lake.uri(key))
            assert scan(table) == [], key
            text = json.dumps(table.to_pylist(), default=str, ensure_ascii=False)
        else:
            text = blob.decode("utf-8")
        assert not any(v in text for v in raw_values), key


def test_pseudonyms_are_stable_within_a_partnership_and_differ_across(share_env, agreements_dir):
    settings, lake = share_env
    by_partner = {}
    for day in (AS_OF, date(2025, 3, 3)):
        for share in publish(
            settings, lake, partners=["wujiang", "jiashan"], as_of=day, agreements_dir=agreements_dir
        ):
            # Qingpu's own border incidents go to both partners: compare those
            by_partner.setdefault((share.partner, day), {}).update(
                {
                    r["record_id"]: r["caller_phone"]
                    for r in read_share(lake, share)
                    if r["jurisdiction_code"] == "310118"
                }
            )
    wj1, wj2 = by_partner[("wujiang", AS_OF)], by_partner[("wujiang", date(2025, 3, 3))]
    js1 = by_partner[("jiashan", AS_OF)]
    assert wj1 and all(wj2[k] == v for k, v in wj1.items())
    assert set(wj1) == set(js1) and all(js1[k] != wj1[k] for k in wj1)


def test_a_configured_key_is_used_and_never_written_or_logged(share_env, agreements_dir, monkeypatch, caplog):
    settings, lake = share_env
    key = "a1" * 32
    monkeypatch.setenv("PINGAN_SHARE_KEY_WUJIANG", key)
    with caplog.at_level("DEBUG"):
        publish(settings, lake, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir)
    assert not (settings.home / "secrets" / "share_key_wujiang.hex").exists()
    signing_file = settings.home / "secrets" / "share_signing_key.pem"
    assert stat.S_IMODE(os.stat(signing_file).st_mode) == 0o600  # generated for the embedded default
    assert key not in caplog.text and "PRIVATE KEY" not in caplog.text
    assert all(key not in lake.get_bytes(k).decode("utf-8", "replace") for k in lake.list())


def test_generated_key_file_is_private_and_reused(share_env, agreements_dir):
    settings, lake = share_env
    first = publish(settings, lake, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir)
    key_file = settings.home / "secrets" / "share_key_wujiang.hex"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    again = publish(settings, lake, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir)
    assert again[0].snapshot_id == first[0].snapshot_id


@pytest.mark.parametrize(
    ("column", "rule", "change"),
    [
        (
            "caller_phone",
            "pii_column_unprotected",
            lambda a: a["datasets"]["border_incidents"]["columns"].update(caller_phone="keep"),
        ),
        (
            "address",
            "resident_id",
            lambda a: a["datasets"]["border_incidents"]["columns"].update(address="keep"),
        ),
        ("disposition", "mobile", None),
    ],
)
def test_pii_guard_blocks_and_nothing_is_written(share_env, agreements_dir, column, rule, change):
    settings, lake = share_env
    rows = incident_rows()
    if rule == "resident_id":  # an ID number typed into the address
        rows[0] = rows[0][:16] + (f"金泽镇人民路1号 当事人{resident_id(7)}",) + rows[0][17:]
    if rule == "mobile":  # a phone number in the free-text disposition
        rows[0] = rows[0][:18] + (f"已联系报警人{mobile(3)}",) + rows[0][19:]
    write_warehouse(settings.warehouse_path, rows)
    if change:
        edit_agreement(agreements_dir, "wujiang", change)

    with pytest.raises(PiiGuardError) as err:
        publish(settings, lake, as_of=AS_OF, agreements_dir=agreements_dir)
    message = str(err.value)
    assert f"partner wujiang, dataset border_incidents, column {column}: rule {rule}" in message
    assert mobile(3) not in message and resident_id(7) not in message
    assert lake.list("share/") == [] and lake.list("audit/") == []  # no partner got anything


def test_latest_pointer_is_written_after_the_snapshot(share_env, agreements_dir):
    settings, lake = share_env
    written: list[str] = []

    class RecordingStore(Store):
        def put_bytes(self, key, data, content_type="application/octet-stream"):
            written.append(key)
            super().put_bytes(key, data, content_type)

    publish(
        settings, RecordingStore(lake.url), partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir
    )
    names = [k.rsplit("/", 1)[-1] for k in written if k.startswith("share/wujiang/border_incidents/")]
    assert names == ["part-0.parquet", "manifest.json", "manifest.sig", "latest.json"]
    assert written[-1].startswith("audit/publications/")


def test_expired_agreement_publishes_nothing(share_env, agreements_dir):
    settings, lake = share_env
    edit_agreement(agreements_dir, "jinshan", lambda a: a.update(expires_on="2025-03-01"))
    shares = publish(settings, lake, partners=["jinshan"], as_of=AS_OF, agreements_dir=agreements_dir)
    assert shares == [] and lake.list("share/") == []
    entries = [json.loads(lake.get_bytes(k)) for k in lake.list("audit/publications/")]
    assert [(e["event"], e["partner"]) for e in entries] == [("skipped_expired", "jinshan")]


def test_rerun_is_idempotent_and_latest_never_moves_back(share_env, agreements_dir):
    settings, lake = share_env
    first = publish(settings, lake, as_of=AS_OF, agreements_dir=agreements_dir)
    keys, audit = lake.list("share/"), lake.list("audit/")
    again = publish(settings, lake, as_of=AS_OF, agreements_dir=agreements_dir)
    assert [s.snapshot_id for s in again] == [s.snapshot_id for s in first]
    assert not any(s.created for s in again)
    assert lake.list("share/") == keys and lake.list("audit/") == audit

    later = publish(
        settings, lake, partners=["wujiang"], as_of=date(2025, 3, 3), agreements_dir=agreements_dir
    )
    assert later[0].rows > first[[s.partner for s in first].index("wujiang")].rows
    publish(
        settings, lake, partners=["wujiang"], as_of=date(2025, 3, 1), agreements_dir=agreements_dir
    )  # backfill
    latest = json.loads(lake.get_bytes("share/wujiang/border_incidents/latest.json"))
    assert latest["snapshot_id"] == later[0].snapshot_id


def test_tampered_snapshot_does_not_verify(share_env, agreements_dir):
    settings, lake = share_env
    share = publish(settings, lake, partners=["pinghu"], as_of=AS_OF, agreements_dir=agreements_dir)[0]
    prefix = mf.snapshot_prefix("pinghu", "joint_operations", share.snapshot_id)
    assert share.rows == 1
    key = public_key(lake, "pinghu")
    mf.verify_snapshot(lake, prefix, key)

    data = bytearray(lake.get_bytes(prefix + "part-0.parquet"))
    data[-20] ^= 0xFF
    lake.put_bytes(prefix + "part-0.parquet", bytes(data))
    with pytest.raises(mf.ManifestError, match="sha256"):
        mf.verify_snapshot(lake, prefix, key)

    forged = json.loads(lake.get_bytes(prefix + "manifest.json"))
    forged["rows"] = 99
    lake.put_bytes(prefix + "manifest.json", mf.encode(forged))
    with pytest.raises(mf.ManifestError, match="signature"):
        mf.verify_snapshot(lake, prefix, key)


def test_missing_column_or_partner_is_a_clear_error(share_env, agreements_dir):
    settings, lake = share_env
    with pytest.raises(ShareError, match="no agreement for partner"):
        publish(settings, lake, partners=["hangzhou"], as_of=AS_OF, agreements_dir=agreements_dir)
    edit_agreement(
        agreements_dir,
        "pinghu",
        lambda a: a["datasets"]["joint_operations"]["columns"].update(no_such_column="keep"),
    )
    with pytest.raises(ShareError, match=r"partner pinghu, dataset joint_operations .*no_such_column"):
        publish(settings, lake, partners=["pinghu"], as_of=AS_OF, agreements_dir=agreements_dir)


@pytest.fixture
def s3_lake(home, s3_server, monkeypatch):
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PINGAN_LAKE_URL", "s3://shares-test/lake")


def test_an_s3_deployment_needs_its_keys_configured(s3_lake, share_env, agreements_dir, monkeypatch):
    settings, _ = share_env
    lake = Store(settings.lake_url, settings.s3)
    lake.ensure()
    with pytest.raises(ShareKeyError, match="PINGAN_SHARE_SIGNING_KEY"):
        publish(settings, lake, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir)
    monkeypatch.setenv("PINGAN_SHARE_SIGNING_KEY", "5e" * 32)
    with pytest.raises(ShareKeyError, match="PINGAN_SHARE_KEY_WUJIANG"):
        publish(settings, lake, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir)
    monkeypatch.setenv("PINGAN_SHARE_KEY_WUJIANG", "7c" * 32)
    share = publish(settings, lake, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir)[0]
    assert share.path.startswith("s3://shares-test/lake/share/wujiang/border_incidents/")
    mf.verify_snapshot(
        lake,
        mf.snapshot_prefix("wujiang", "border_incidents", share.snapshot_id),
        public_key(lake, "wujiang"),
    )
    assert not (settings.home / "secrets").exists()
