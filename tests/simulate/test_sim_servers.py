"""The simulated HTTP sources: token, pagination, since/until, the joint-operations CSV, and faults."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest
import requests

from pingan_sim.servers import Faults, SourceServers

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
INSPECTIONS, ALARMS = "/api/v1/fire/inspections", "/api/v1/fire/alarms"


def window(day) -> dict[str, str]:
    """A day as a connector asks for it: (day 00:00, next day 00:00] in Shanghai time."""
    start = datetime.combine(day, datetime.min.time())
    return {
        "since": f"{start.isoformat()}+08:00",
        "until": f"{(start + timedelta(days=1)).isoformat()}+08:00",
    }


def file_records(sim, kind: str, day) -> list[dict]:
    path = sim.home / f"sim/qingpu/fire/{kind}_{day:%Y%m%d}.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def all_pages(url: str, params: dict, size: int = 2) -> list[dict]:
    out, page = [], 1
    while True:
        body = requests.get(
            url, params={**params, "page": page, "page_size": size}, headers=AUTH, timeout=10
        ).json()
        assert body["page"] == page
        out += body["data"]
        if page >= body["total_pages"]:
            assert body["total"] == len(out)
            return out
        page += 1


def all_cursors(url: str, params: dict, limit: int = 50) -> list[dict]:
    out, cursor = [], None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = requests.get(url, params=query, headers=AUTH, timeout=10).json()
        out += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out


@pytest.fixture(scope="module")
def servers(sim):
    with SourceServers(sim.home, TOKEN) as s:
        yield s


def test_the_fire_api_wants_the_bearer_token(servers, sim):
    url = servers.fire_url + ALARMS
    assert requests.get(url, params=window(sim.days[0]), timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    ok = requests.get(url, params=window(sim.days[0]), headers=AUTH, timeout=10)
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("application/json")


def test_page_pagination_covers_every_record_of_the_day_exactly_once(servers, sim):
    day = sim.days[1]
    served = all_pages(servers.fire_url + INSPECTIONS, window(day))
    expected = file_records(sim, "inspections", day)
    assert served == expected and len(served) > 2  # several pages, duplicates in the data kept as served
    everything = {"since": window(sim.days[0])["since"], "until": window(sim.days[-1])["until"]}
    assert all_pages(servers.fire_url + INSPECTIONS, everything, size=3) == [
        r for d in sim.days for r in file_records(sim, "inspections", d)
    ]


def test_cursor_pagination_covers_every_record_of_the_day_exactly_once(servers, sim):
    day = sim.days[1]
    served = all_cursors(servers.fire_url + ALARMS, window(day))
    expected = file_records(sim, "alarms", day)
    assert len(served) > 100
    assert Counter(json.dumps(r, sort_keys=True) for r in served) == Counter(
        json.dumps(r, sort_keys=True) for r in expected
    )
    # consecutive day windows partition the data: nothing lost, nothing twice
    three = [r for d in sim.days for r in all_cursors(servers.fire_url + ALARMS, window(d), limit=500)]
    whole = all_cursors(
        servers.fire_url + ALARMS,
        {"since": window(sim.days[0])["since"], "until": window(sim.days[-1])["until"]},
        limit=500,
    )
    assert three == whole


def test_since_is_exclusive_and_until_inclusive(servers, sim):
    records = file_records(sim, "alarms", sim.days[0])
    t = records[len(records) // 2]["updatedAt"]
    at_t = sum(r["updatedAt"] == t for r in records)
    upto = all_cursors(servers.fire_url + ALARMS, {"until": t}, limit=1000)
    after = all_cursors(
        servers.fire_url + ALARMS, {"since": t, "until": window(sim.days[0])["until"]}, limit=1000
    )
    assert upto[-1]["updatedAt"] == t and all(r["updatedAt"] > t for r in after)
    assert len(upto) + len(after) == len(records)
    assert sum(r["updatedAt"] == t for r in upto) == at_t
    # 'Z' and other offsets are the same instant
    utc = (datetime.fromisoformat(t) - timedelta(hours=8)).replace(tzinfo=None).isoformat() + "Z"
    assert all_cursors(servers.fire_url + ALARMS, {"until": utc}, limit=1000) == upto


def test_bad_parameters_are_400_and_unknown_paths_404(servers):
    url = servers.fire_url + ALARMS
    assert requests.get(url, params={"since": "yesterday"}, headers=AUTH, timeout=10).status_code == 400
    assert requests.get(url, params={"cursor": "nonsense"}, headers=AUTH, timeout=10).status_code == 400
    assert requests.get(servers.fire_url + "/api/v1/other", headers=AUTH, timeout=10).status_code == 404


def test_joint_operations_csv_over_http(servers, sim):
    day = sim.days[0]
    resp = requests.get(
        servers.joint_ops_url + "/api/v1/joint-operations.csv", params={"date": day.isoformat()}, timeout=10
    )
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    path = sim.home / f"sim/pinghu_jinshan/joint_operations/joint_operations_{day:%Y%m%d}.csv"
    assert resp.content == path.read_bytes()
    assert resp.text.splitlines()[0] == (
        "op_id,mechanism,op_date,pinghu_town,jinshan_town,location,pinghu_units,"
        "jinshan_units,outcome,linked_ids"
    )
    url = servers.joint_ops_url + "/api/v1/joint-operations.csv"
    assert requests.get(url, params={"date": "1999-01-01"}, timeout=10).status_code == 404
    assert requests.get(url, params={"date": "soon"}, timeout=10).status_code == 400


def test_joint_operations_token_when_configured(sim):
    with SourceServers(sim.home, TOKEN, joint_ops_token="pj") as s:
        url = s.joint_ops_url + "/api/v1/joint-operations.csv"
        params = {"date": sim.days[0].isoformat()}
        assert requests.get(url, params=params, timeout=10).status_code == 401
        assert (
            requests.get(url, params=params, headers={"Authorization": "Bearer pj"}, timeout=10).status_code
            == 200
        )


# --- faults ----------------------------------------------------------------------------------------------


def test_fail_first_n_answers_500_then_recovers(sim):
    faults = Faults(fail_first_n=2)
    with SourceServers(sim.home, TOKEN, faults) as s:
        codes = [
            requests.get(
                s.fire_url + ALARMS, headers=AUTH, params=window(sim.days[0]), timeout=10
            ).status_code
            for _ in range(3)
        ]
        csv_ok = requests.get(
            s.joint_ops_url + "/api/v1/joint-operations.csv",
            params={"date": sim.days[0].isoformat()},
            timeout=10,
        ).status_code
    assert codes == [500, 500, 200] and csv_ok == 200
    assert faults.requests_served == 4
    assert [status for _, status in faults.log] == [500, 500, 200, 200]


def test_slow_first_n_makes_a_client_time_out(sim):
    faults = Faults(slow_first_n=1, slow_seconds=3)
    with SourceServers(sim.home, TOKEN, faults) as s:
        with pytest.raises(requests.Timeout):
            requests.get(s.fire_url + ALARMS, headers=AUTH, params=window(sim.days[0]), timeout=0.3)
        again = requests.get(s.fire_url + ALARMS, headers=AUTH, params=window(sim.days[0]), timeout=2)
    assert again.status_code == 200
    assert faults.requests_served == 2


def test_repeated_page_with_page_numbers(sim):
    faults = Faults(repeat_page=True)
    params = {**window(sim.days[1]), "page_size": 1}
    with SourceServers(sim.home, TOKEN, faults) as s:
        url = s.fire_url + INSPECTIONS

        def get(page):
            return requests.get(url, params={**params, "page": page}, headers=AUTH, timeout=10)

        first, stale, second = get(1), get(2), get(2)
        assert (
            stale.content == first.content and stale.json()["page"] == 1
        )  # page 1 again, not what was asked
        assert second.json()["page"] == 2 and second.json()["data"] != first.json()["data"]
        # a client that re-asks when the page number is wrong gets every record once
        out, page = [], 1
        while True:
            body = get(page).json()
            if body["page"] != page:
                continue
            out += body["data"]
            if page >= body["total_pages"]:
                break
            page += 1
    assert out == file_records(sim, "inspections", sim.days[1])


def test_repeated_page_with_cursors(sim):
    faults = Faults(repeat_page=True)
    params = {**window(sim.days[1]), "limit": 50}
    with SourceServers(sim.home, TOKEN, faults) as s:
        url = s.fire_url + ALARMS
        first = requests.get(url, params=params, headers=AUTH, timeout=10)
        cursor = first.json()["next_cursor"]
        stale = requests.get(url, params={**params, "cursor": cursor}, headers=AUTH, timeout=10)
        assert stale.content == first.content and stale.json()["next_cursor"] == cursor  # no progress
        fresh = requests.get(url, params={**params, "cursor": cursor}, headers=AUTH, timeout=10)
        assert fresh.json()["items"] != first.json()["items"]
    assert faults.requests_served == 3
