"""The partner side on a local share store: pull, verify, rollback refused, key rotation, wrong partner."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from share_fixtures import listed_files

from pingan.sharing import manifest as mf
from pingan.sharing.keys import public_key_id, public_key_pem
from pingan.sharing.partner import PartnerError, load_profile, pull, verify_local
from pingan.sharing.provision import provision
from pingan.sharing.publish import publish

TODAY = date(2025, 3, 5)


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "partner-copy"  # apart from the hub's PINGAN_HOME under tmp_path/home


@pytest.fixture
def hub(share_env, agreements_dir):
    settings, lake, shares = share_env

    def run(partners=("wujiang",), as_of=date(2025, 3, 2)):
        return publish(settings, lake, shares, partners=list(partners), as_of=as_of,
                       agreements_dir=agreements_dir, today=TODAY)  # fmt: skip

    def profile(partner="wujiang"):
        provision(settings, shares, backend="none", today=TODAY, agreements_dir=agreements_dir)
        return load_profile(settings.home / "partners" / partner / "pull-profile.json")

    run()
    return settings, shares, run, profile


def test_pull_verifies_and_registers_views(hub, dest):
    _, _, _, profile = hub
    pulled = pull(profile(), dest)
    assert {p.dataset for p in pulled} == {"border_incidents", "cross_border_grid_events", "checkpoint_activity",
                                           "cross_border_kpis"}  # fmt: skip
    with duckdb.connect(str(dest / "wujiang.duckdb"), read_only=True) as con:
        count = con.sql("select count(*) from border_incidents").fetchone()[0]
    assert count == next(p.rows for p in pulled if p.dataset == "border_incidents") > 0
    assert len(verify_local(dest, profile())) == 4


def test_local_verify_finds_an_altered_file(hub, dest):
    _, _, _, profile = hub
    snap = next(p for p in pull(profile(), dest) if p.dataset == "border_incidents")
    data_file = next(snap.path.glob("*.parquet"))
    data = bytearray(data_file.read_bytes())
    data[-20] ^= 0xFF
    data_file.write_bytes(bytes(data))
    with pytest.raises(PartnerError, match=r"sha256 differs"):
        verify_local(snap.path, profile())


def test_a_copy_under_another_dataset_or_partner_does_not_verify(hub, dest):
    _, _, run, profile = hub
    run(partners=("jiashan",))
    jiashan = pull(profile("jiashan"), dest / "jiashan", ["border_incidents"])[0]
    # the same folder presented as Wujiang's copy: names another partner
    fake = dest / "wujiang" / "border_incidents" / jiashan.snapshot_id
    fake.mkdir(parents=True)
    for f in jiashan.path.iterdir():
        (fake / f.name).write_bytes(f.read_bytes())
    with pytest.raises(PartnerError, match="partner 'jiashan'"):
        verify_local(fake, profile("wujiang"))
    # a Wujiang snapshot renamed into another dataset's folder
    kpis = pull(profile(), dest / "wj")[0]
    moved = dest / "wj" / "checkpoint_activity" / "moved"
    moved.mkdir(parents=True)
    for f in kpis.path.iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    with pytest.raises(PartnerError, match="not 'wujiang'/'checkpoint_activity'"):
        verify_local(moved, profile())


def test_rollback_to_an_older_pointer_is_refused(hub, dest):
    _, shares, run, profile = hub
    key = "share/wujiang/border_incidents/latest"
    old = {s: shares.get_bytes(f"{key}.{s}") for s in ("json", "sig")}
    run(as_of=date(2025, 3, 3))
    newer = pull(profile(), dest, ["border_incidents"])[0]
    assert newer.as_of == "2025-03-03"
    for suffix, data in old.items():  # an attacker (or a restored backup) puts the older signed pointer back
        shares.put_bytes(f"{key}.{suffix}", data)
    with pytest.raises(PartnerError, match="rollback refused: pointer sequence 1 .* sequence 2"):
        pull(profile(), dest, ["border_incidents"])


def test_a_forged_pointer_is_refused(hub, dest):
    _, shares, _, profile = hub
    key = "share/wujiang/border_incidents/latest.json"
    pointer = json.loads(shares.get_bytes(key))
    pointer["sequence"] = 99
    shares.put_bytes(key, mf.encode(pointer))
    with pytest.raises(mf.ManifestError, match="signature does not verify"):
        pull(profile(), dest, ["border_incidents"])


def test_key_rotation_needs_the_new_key_to_be_trusted(hub, dest, monkeypatch):
    settings, shares, run, profile = hub
    old_profile = profile()
    pull(old_profile, dest, ["border_incidents"])
    new_key = Ed25519PrivateKey.generate()
    pem = new_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    monkeypatch.setenv("PINGAN_SHARE_SIGNING_KEY", pem)
    run(as_of=date(2025, 3, 3))
    new_id = public_key_id(new_key.public_key())
    with pytest.raises(
        mf.ManifestError, match=f"signed with key '{new_id}', which is not among the trusted keys"
    ):
        pull(old_profile, dest, ["border_incidents"])
    rotated = profile()  # the hub hands out the new key id out of band; the old one stays trusted
    assert set(rotated.trusted_keys) == set(old_profile.trusted_keys) | {new_id}
    assert rotated.trusted_keys[new_id] == public_key_pem(new_key.public_key()).decode()
    snap = pull(rotated, dest, ["border_incidents"])[0]
    assert snap.as_of == "2025-03-03"
    assert len(verify_local(dest, rotated)) == 2  # the old snapshot (old key) and the new one


def test_a_file_planted_in_a_snapshot_is_refused_and_never_read(hub, dest):
    """An extra Parquet file beside the listed ones fails verification; the DuckDB views read only the
    files the signed manifest lists."""
    _, _, _, profile = hub
    snap = next(p for p in pull(profile(), dest) if p.dataset == "border_incidents")
    listed = next(snap.path.glob("*.parquet"))
    (snap.path / "part-planted.parquet").write_bytes(listed.read_bytes())
    with pytest.raises(PartnerError, match=r"part-planted.parquet is not listed in the signed manifest"):
        verify_local(dest, profile())
    with duckdb.connect(str(dest / "wujiang.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from border_incidents").fetchone()[0] == snap.rows


def test_a_snapshot_without_its_manifest_or_a_vanished_dataset_is_refused(hub, dest):
    _, _, _, profile = hub
    pulled = {p.dataset: p for p in pull(profile(), dest)}
    stray = dest / "checkpoint_activity" / "20250301-000000-forged"
    stray.mkdir()
    (stray / "part-0.parquet").write_bytes(b"PAR1")
    with pytest.raises(PartnerError, match=r"without its signed manifest"):
        verify_local(dest, profile())
    for f in stray.iterdir():
        f.unlink()
    stray.rmdir()
    assert len(verify_local(dest, profile())) == 4
    for f in sorted(pulled["cross_border_kpis"].path.iterdir()):
        f.unlink()
    pulled["cross_border_kpis"].path.rmdir()
    with pytest.raises(PartnerError, match=r"cross_border_kpis: the snapshot .* pulled last is gone"):
        verify_local(dest, profile())


def test_a_view_repointed_at_another_file_is_refused(hub, dest, tmp_path):
    _, _, _, profile = hub
    snap = next(p for p in pull(profile(), dest) if p.dataset == "border_incidents")
    other = tmp_path / "other.parquet"
    other.write_bytes(next(snap.path.glob("*.parquet")).read_bytes())
    with duckdb.connect(str(dest / "wujiang.duckdb")) as con:
        con.execute(f"create or replace view border_incidents as select * from read_parquet(['{other}'])")
    with pytest.raises(PartnerError, match=r"view border_incidents does not read the verified files"):
        verify_local(dest, profile())
    pull(profile(), dest)  # a pull recreates the views from verified files
    assert len(verify_local(dest, profile())) == 4


def test_a_file_altered_in_the_share_store_is_refused_and_fetched_again_once_repaired(hub, dest):
    _, shares, _, profile = hub
    prefix = "share/wujiang/border_incidents/"
    manifest = json.loads(
        shares.get_bytes(prefix + json.loads(shares.get_bytes(prefix + "latest.json"))["manifest"])
    )
    files = listed_files(shares, manifest)
    key = prefix + files[0]["path"]
    good = shares.get_bytes(key)
    shares.put_bytes(key, good[:-20] + bytes(b ^ 0xFF for b in good[-20:]))  # altered in the store
    with pytest.raises(mf.ManifestError, match="sha256 differs from the manifest"):
        pull(profile(), dest, ["border_incidents"])
    folder = dest / "border_incidents" / manifest["snapshot_id"]
    assert not (folder / mf.SIGNATURE).exists()  # nothing kept as a complete copy
    shares.put_bytes(key, good)
    (pulled,) = pull(profile(), dest, ["border_incidents"])
    assert pulled.new and pulled.files_downloaded == len(files)
    assert len(verify_local(folder, profile())) == 1
