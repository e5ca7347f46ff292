"""The Delta Sharing server read by the stock `delta-sharing` client on 127.0.0.1 (local and S3 share store)."""

from __future__ import annotations

import json
from datetime import date

import delta_sharing
import pytest
import requests
import yaml
from server_fixtures import running
from share_fixtures import AS_OF, incident_rows

from pingan.core import audit
from pingan.core.settings import load_settings
from pingan.sharing.provision import provision
from pingan.sharing.publish import publish, share_store
from pingan.sharing.server import create_app

TODAY = date(2025, 3, 5)


def token_of(profile_path: str) -> str:
    with open(profile_path, encoding="utf-8") as fh:
        return json.load(fh)["bearerToken"]


def expected_border_rows(partner_code: str, as_of: date) -> int:
    return sum(
        1 for r in incident_rows() if r[12] and r[1] in ("310118", partner_code) and r[6].date() <= as_of
    )


def profiles(settings, shares, agreements_dir, url) -> dict:
    provision(
        settings, shares, backend="none", share_server_url=url, today=TODAY, agreements_dir=agreements_dir
    )
    return {p: str(settings.home / "partners" / p / f"{p}.share") for p in ("wujiang", "jiashan", "pinghu")}


@pytest.fixture
def served(share_env, agreements_dir):
    settings, lake, shares = share_env
    for as_of in (AS_OF, date(2025, 3, 3)):
        publish(settings, lake, shares, as_of=as_of, agreements_dir=agreements_dir, today=TODAY)
    today = {"value": TODAY}
    app = create_app(settings, agreements_dir=agreements_dir, today=lambda: today["value"])
    with running(app) as url:
        yield settings, shares, agreements_dir, url, profiles(settings, shares, agreements_dir, url), today


def test_stock_client_reads_the_partners_rows_with_time_travel(served):
    _, shares, _, _, profile, _ = served
    client = delta_sharing.SharingClient(profile["wujiang"])
    assert [s.name for s in client.list_shares()] == ["wujiang"]
    tables = {t.name for t in client.list_all_tables()}
    assert tables == {
        "border_incidents",
        "cross_border_grid_events",
        "checkpoint_activity",
        "cross_border_kpis",
    }
    url = profile["wujiang"] + "#wujiang.qingwujia.border_incidents"
    df = delta_sharing.load_as_pandas(url)
    assert len(df) == expected_border_rows("320509", date(2025, 3, 3))
    assert set(df["jurisdiction_code"]) == {"310118", "320509"}
    assert df["caller_phone"].str.startswith("p_").all()
    assert delta_sharing.get_table_version(url) == 1
    first = delta_sharing.load_as_pandas(url, version=0)  # the first snapshot, by time travel
    assert len(first) == expected_border_rows("320509", AS_OF) < len(df)
    assert len(delta_sharing.load_as_pandas(url, limit=2)) <= len(df)
    queries = [e for e in audit.entries(shares) if e["event"] == "protocol_query"]
    assert {(q["partner"], q["dataset"], q["detail"]["version"]) for q in queries} >= {
        ("wujiang", "border_incidents", 1), ("wujiang", "border_incidents", 0)
    }  # fmt: skip


def test_another_partners_token_sees_nothing_of_it(served):
    _, _, _, url, profile, _ = served
    jiashan = delta_sharing.SharingClient(profile["jiashan"])
    assert [s.name for s in jiashan.list_shares()] == ["jiashan"]
    with pytest.raises(Exception, match="404"):
        delta_sharing.load_as_pandas(profile["jiashan"] + "#wujiang.qingwujia.border_incidents")
    token = token_of(profile["jiashan"])
    response = requests.post(f"{url}/shares/wujiang/schemas/qingwujia/tables/border_incidents/query",
                             headers={"Authorization": f"Bearer {token}"}, json={})  # fmt: skip
    assert response.status_code == 404 and "wujiang" not in json.dumps(response.json()).replace(
        "'wujiang'", ""
    )
    pinghu = delta_sharing.load_as_pandas(profile["pinghu"] + "#pinghu.pinghu_jinshan.joint_operations")
    assert len(pinghu) == 1


def test_unknown_revoked_or_expired_recipients_are_refused(served):
    _, shares, agreements_dir, url, profile, today = served
    tables = "/shares/wujiang/schemas/qingwujia/tables"
    assert requests.get(url + tables, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert requests.get(url + tables).status_code == 401
    token = token_of(profile["wujiang"])
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(url + tables, headers=auth).status_code == 200

    today["value"] = date(2028, 1, 1)  # the agreement expired on 2027-12-31 (real date, not as-of)
    response = requests.get(url + tables, headers=auth)
    assert response.status_code == 403 and "expired on 2027-12-31" in response.json()["message"]
    today["value"] = TODAY

    path = (
        agreements_dir / "wujiang.yaml"
    )  # a new agreement version rotates the token: the old one is revoked
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["version"] = 3
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert requests.get(url + tables, headers=auth).status_code == 401
    with pytest.raises(Exception, match="401"):
        delta_sharing.load_as_pandas(profile["wujiang"] + "#wujiang.qingwujia.border_incidents")
    denied = [e for e in audit.entries(shares) if e["event"] == "protocol_denied"]
    assert {e["detail"]["status"] for e in denied} == {401, 403}


def test_a_signed_file_url_cannot_be_altered(served):
    _, _, _, url, profile, _ = served
    token = token_of(profile["wujiang"])
    lines = requests.post(f"{url}/shares/wujiang/schemas/qingwujia/tables/border_incidents/query",
                          headers={"Authorization": f"Bearer {token}"}, json={}).text.splitlines()  # fmt: skip
    file_url = json.loads(lines[-1])["file"]["url"]
    assert requests.get(file_url).status_code == 200
    assert requests.get(file_url[:-4] + "0000").status_code == 403


@pytest.mark.slow
def test_stock_client_reads_presigned_urls_from_s3(home, s3_server, monkeypatch, agreements_dir):
    from share_fixtures import write_warehouse

    from pingan.core.storage import Store

    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PINGAN_SHARE_URL", "s3://shares-server-test")
    monkeypatch.setenv("PINGAN_SHARE_SIGNING_KEY", "5e" * 32)
    monkeypatch.setenv("PINGAN_SHARE_RECIPIENT_KEY", "4b" * 32)
    for p in ("WUJIANG", "JIASHAN", "PINGHU", "JINSHAN"):
        monkeypatch.setenv(f"PINGAN_SHARE_KEY_{p}", "7c" * 32)
    settings = load_settings()
    write_warehouse(settings.warehouse_path, incident_rows())
    lake, shares = Store(settings.lake_url), share_store(settings)
    lake.ensure()
    publish(
        settings, lake, shares, partners=["wujiang"], as_of=AS_OF, agreements_dir=agreements_dir, today=TODAY
    )
    with running(create_app(settings, agreements_dir=agreements_dir, today=lambda: TODAY)) as url:
        provision(
            settings, shares, backend="none", share_server_url=url, today=TODAY, agreements_dir=agreements_dir
        )
        profile = str(settings.home / "partners" / "wujiang" / "wujiang.share")
        token = token_of(profile)
        query = requests.post(f"{url}/shares/wujiang/schemas/qingwujia/tables/border_incidents/query",
                              headers={"Authorization": f"Bearer {token}"}, json={}).text  # fmt: skip
        assert "X-Amz-Signature" in query and s3_server.endpoint in query
        df = delta_sharing.load_as_pandas(profile + "#wujiang.qingwujia.border_incidents")
    assert len(df) == expected_border_rows("320509", AS_OF)
