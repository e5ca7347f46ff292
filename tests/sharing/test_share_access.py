"""Per-partner access with real credentials against SeaweedFS on 127.0.0.1: provisioned from the agreements,
a partner reads and pulls its own latest snapshots and nothing else, and an ended agreement loses access."""

from __future__ import annotations

import io
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml
from minio import Minio
from minio.error import S3Error
from s3_server import start_s3_server
from share_fixtures import AS_OF, incident_rows, write_warehouse

from pingan.core import audit
from pingan.core.settings import PROJECT_ROOT, load_settings
from pingan.core.storage import Store
from pingan.sharing.partner import load_profile, pull
from pingan.sharing.provision import minio_policy, provision
from pingan.sharing.publish import publish, share_store

pytestmark = pytest.mark.slow
TODAY = date(2025, 3, 3)
KEYS = {
    "PINGAN_SHARE_SIGNING_KEY": "5e" * 32,
    "PINGAN_SHARE_RECIPIENT_KEY": "9d" * 32,
    **{
        f"PINGAN_SHARE_KEY_{p.upper()}": f"{i}c" * 32
        for i, p in enumerate(("wujiang", "jiashan", "pinghu", "jinshan"))
    },
}


class Hub:
    """A hub deployment on SeaweedFS: lake, share store and a warehouse copy in three buckets."""

    def __init__(self, root: Path):
        self.root, self.data, self.config = root, root / "weed", root / "weed" / "s3.json"
        self.agreements = root / "agreements"
        shutil.copytree(PROJECT_ROOT / "agreements", self.agreements)
        self.server = None

    def start(self) -> None:
        """(Re)start SeaweedFS with the partner identities provisioning wrote (it reads them at start)."""
        config = json.loads(self.config.read_text()) if self.config.exists() else {"identities": []}
        partners = [i for i in config["identities"] if i["name"].startswith("pingan-share-")]
        self.server = start_s3_server(self.data, partners)
        env = {**self.server.env(), **KEYS, "PINGAN_HOME": str(self.root / "home"),
               "PINGAN_LAKE_URL": "s3://pingan-lake", "PINGAN_SHARE_URL": "s3://pingan-shares",
               "PINGAN_AGREEMENTS_DIR": str(self.agreements)}  # fmt: skip
        self.settings = load_settings(env)
        self.lake = Store(self.settings.lake_url, self.settings.s3)
        self.lake.ensure()
        self.shares = share_store(self.settings)

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    def provision(self) -> None:
        def run():
            provision(self.settings, self.shares, backend="seaweedfs", s3_config=self.config, today=TODAY,
                      agreements_dir=self.agreements)  # fmt: skip

        run()
        self.stop()
        self.start()
        run()  # unchanged identities; the profiles get the restarted server's port

    def publish(self, **kwargs) -> list:
        return publish(self.settings, self.lake, self.shares, agreements_dir=self.agreements, today=TODAY,
                       **{"as_of": AS_OF, **kwargs})  # fmt: skip

    def profile(self, partner: str):
        return load_profile(self.settings.home / "partners" / partner / "pull-profile.json")

    def client(self, partner: str) -> Minio:
        s3 = self.profile(partner).s3
        return Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=False, region="us-east-1")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = Hub(tmp_path_factory.mktemp("hub"))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in KEYS.items():
            mp.setenv(k, v)
        try:
            hub.start()
            write_warehouse(hub.settings.warehouse_path, incident_rows())
            hub.publish()
            hub.provision()
            hub.lake.put_bytes(
                "raw/incident/jurisdiction=310118/load_date=2025-03-01/part.parquet", b"raw rows"
            )
            admin = Minio(hub.server.endpoint, hub.server.access_key, hub.server.secret_key, secure=False,
                          region="us-east-1")  # fmt: skip
            if not admin.bucket_exists("pingan-warehouse"):
                admin.make_bucket("pingan-warehouse")
            admin.fput_object("pingan-warehouse", "warehouse.duckdb", str(hub.settings.warehouse_path))
            yield hub
        finally:
            hub.stop()


def denied(call, codes=("AccessDenied",)) -> bool:
    try:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            list(result)
    except S3Error as exc:
        return exc.code in codes
    return False


def test_a_partner_pulls_and_queries_its_latest_snapshots(hub, tmp_path):
    profile = hub.profile("wujiang")
    assert profile.s3 and profile.s3.access_key == "pingan-share-wujiang"
    pulled = pull(profile, tmp_path / "wujiang")
    assert {p.dataset for p in pulled} == set(profile.datasets) and all(p.new for p in pulled)
    expected = sum(
        1 for r in incident_rows() if r[12] and r[1] in ("310118", "320509") and r[6].date() <= AS_OF
    )
    with duckdb.connect(str(tmp_path / "wujiang" / "wujiang.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from border_incidents").fetchone()[0] == expected
    again = pull(profile, tmp_path / "wujiang")
    assert not any(p.new for p in again)


def test_a_partner_cannot_read_or_list_anything_else(hub):
    wujiang = hub.client("wujiang")
    own = "share/wujiang/border_incidents/latest.json"
    assert wujiang.get_object("pingan-shares", own).read()
    assert [o.object_name for o in wujiang.list_objects("pingan-shares", prefix="share/wujiang/border_incidents/",
                                                         recursive=True)]  # fmt: skip
    other = next(k for k in hub.shares.list("share/jiashan/") if k.endswith(".parquet"))
    assert denied(lambda: wujiang.get_object("pingan-shares", other))
    assert denied(lambda: wujiang.get_object("pingan-shares", "share/jiashan/border_incidents/latest.json"))
    assert denied(lambda: wujiang.list_objects("pingan-shares", prefix="share/jiashan/", recursive=True))
    assert denied(lambda: wujiang.list_objects("pingan-shares", recursive=True))
    assert denied(lambda: wujiang.get_object("pingan-shares", audit.entry_key(1)))
    assert denied(lambda: wujiang.list_objects("pingan-lake", recursive=True))
    assert denied(
        lambda: wujiang.get_object(
            "pingan-lake", "raw/incident/jurisdiction=310118/load_date=2025-03-01/part.parquet"
        )
    )
    assert denied(lambda: wujiang.get_object("pingan-warehouse", "warehouse.duckdb"))


def test_a_partner_cannot_write_anywhere(hub):
    wujiang = hub.client("wujiang")
    for bucket, key in [("pingan-shares", "share/wujiang/border_incidents/latest.json"),
                        ("pingan-shares", "share/jiashan/x"), ("pingan-shares", "audit/log/9999999999.json"),
                        ("pingan-lake", "raw/x"), ("pingan-warehouse", "warehouse.duckdb")]:  # fmt: skip
        assert denied(lambda b=bucket, k=key: wujiang.put_object(b, k, io.BytesIO(b"x"), 1)), (bucket, key)
        assert denied(lambda b=bucket, k=key: wujiang.remove_object(b, k)), (bucket, key)
    assert hub.shares.get_bytes("share/wujiang/border_incidents/latest.json") != b"x"
    assert hub.lake.exists("raw/incident/jurisdiction=310118/load_date=2025-03-01/part.parquet")


def test_a_snapshot_copied_under_another_partner_is_refused(hub, tmp_path):
    from pingan.sharing import manifest as mf
    from pingan.sharing.manifest import ManifestError
    from pingan.sharing.partner import PartnerError

    # the hub (or anyone with write access) copies Jiashan's pointer and snapshot under wujiang/
    for suffix in ("latest.json", "latest.sig"):
        hub.shares.put_bytes(f"share/wujiang/cross_border_kpis/{suffix}",
                             hub.shares.get_bytes(f"share/jiashan/cross_border_kpis/{suffix}"))  # fmt: skip
    pointer = json.loads(hub.shares.get_bytes("share/jiashan/cross_border_kpis/latest.json"))
    src = mf.dataset_prefix("jiashan", "cross_border_kpis")
    for key in hub.shares.list(src + mf.SNAPSHOTS + pointer["snapshot_id"] + "/"):
        hub.shares.put_bytes(key.replace("share/jiashan/", "share/wujiang/"), hub.shares.get_bytes(key))
    try:
        with pytest.raises((PartnerError, ManifestError), match="jiashan"):
            pull(hub.profile("wujiang"), tmp_path / "copy", ["cross_border_kpis"])
    finally:
        hub.publish(partners=["wujiang"], as_of=date(2025, 3, 3))


def test_minio_policy_grants_only_the_partner_prefix():
    shares = Store(
        "s3://pingan-shares/prod",
        __import__("pingan.core.settings", fromlist=["S3Settings"]).S3Settings("h:9000", "a", "b"),
    )
    policy = minio_policy(shares, "wujiang")
    actions = sorted(a for s in policy["Statement"] for a in s["Action"])
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    get, listing = policy["Statement"]
    assert get["Resource"] == ["arn:aws:s3:::pingan-shares/prod/share/wujiang/*"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["prod/share/wujiang/*"]}}


def test_an_ended_agreement_loses_its_access(hub, tmp_path):
    path = hub.agreements / "pinghu.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["expires_on"] = "2025-03-02"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    creds = hub.profile("pinghu").s3
    log_key = "share/pinghu/joint_operations/_delta_log/00000000000000000000.json"
    assert hub.client("pinghu").get_object("pingan-shares", log_key).read()
    hub.publish(partners=["pinghu"])  # withdraws the latest pointers
    hub.provision()  # removes the identity (and restarts SeaweedFS, which reads identities at start)
    assert not (hub.settings.home / "partners" / "pinghu" / "pull-profile.json").exists()
    before = Minio(hub.server.endpoint, creds.access_key, creds.secret_key, secure=False, region="us-east-1")
    assert hub.shares.exists(log_key) and denied(
        lambda: before.get_object("pingan-shares", log_key), ("AccessDenied", "InvalidAccessKeyId")
    )
    assert not hub.shares.exists("share/pinghu/joint_operations/latest.json")
    assert (
        hub.client("jinshan").get_object("pingan-shares", "share/jinshan/joint_operations/latest.json").read()
    )
    events = [(e["event"], e["partner"]) for e in audit.entries(hub.shares)]
    assert ("access_removed", "pinghu") in events and ("withdrawn", "pinghu") in events
    assert audit.verify_chain(hub.shares) == len(events)


def test_a_partner_reads_its_delta_table_with_its_own_credentials(hub):
    from deltalake import DeltaTable

    s3 = hub.profile("wujiang").s3
    options = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key, "AWS_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": f"http://{s3.endpoint}", "AWS_ALLOW_HTTP": "true"}  # fmt: skip
    table = DeltaTable("s3://pingan-shares/share/wujiang/border_incidents", storage_options=options)
    assert table.to_pyarrow_table().num_rows > 0
    with pytest.raises(Exception, match=r"(?i)403|denied|forbidden"):  # object_store wraps the S3 error
        DeltaTable("s3://pingan-shares/share/jiashan/border_incidents", storage_options=options)
