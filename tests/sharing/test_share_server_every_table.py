"""The stock `delta-sharing` client reads every granted table of every partner over the share server, at
about the demo's size (5,400 border incidents a partner), its files read in ranged parts."""

from __future__ import annotations

from datetime import date, timedelta

import delta_sharing
import pytest
from server_fixtures import running
from share_fixtures import incident_rows, mobile, write_warehouse

from pingan.sharing.agreements import load_agreements
from pingan.sharing.provision import provision
from pingan.sharing.publish import publish
from pingan.sharing.server import create_app

TODAY = date(2025, 3, 5)
COPIES = 540  # 30 fixture incidents each: 16,200 rows, about 5,400 border incidents per partner


def demo_sized_incidents() -> list[tuple]:
    rows = []
    for k in range(COPIES):
        for i, row in enumerate(incident_rows()):
            n = k * 30 + i
            jurisdiction, source_id = row[1], f"INC{n:06d}"
            shifted = [v + timedelta(seconds=k) if j in (6, 7, 8) else v for j, v in enumerate(row)]
            shifted[0], shifted[3], shifted[19] = f"{jurisdiction}:{source_id}", source_id, mobile(n)
            rows.append(tuple(shifted))
    return rows


@pytest.fixture
def every_table(share_env, agreements_dir):
    """Every partner published (the stock client's tables are checked against the published row counts)."""
    settings, lake, shares = share_env
    write_warehouse(settings.warehouse_path, demo_sized_incidents())
    published = publish(settings, lake, shares, as_of=date(2025, 3, 3), agreements_dir=agreements_dir,
                        today=TODAY)  # fmt: skip
    ranged = {"206": 0}
    app = create_app(settings, agreements_dir=agreements_dir, today=lambda: TODAY)

    @app.middleware("http")
    async def count_ranged(request, call_next):  # what the server answered, not what the client asked
        response = await call_next(request)
        ranged["206"] += response.status_code == 206
        return response

    with running(app) as url:
        provision(settings, shares, backend="none", share_server_url=url, today=TODAY,
                  agreements_dir=agreements_dir)  # fmt: skip
        profiles = {
            p: str(settings.home / "partners" / p / f"{p}.share") for p in load_agreements(agreements_dir)
        }
        yield {(s.partner, s.dataset): s.rows for s in published}, profiles, ranged


def read_every_table(profiles: dict[str, str]) -> dict[tuple[str, str], int]:
    rows = {}
    for partner, profile in sorted(profiles.items()):
        for table in delta_sharing.SharingClient(profile).list_all_tables():
            frame = delta_sharing.load_as_pandas(f"{profile}#{table.share}.{table.schema}.{table.name}")
            rows[(partner, table.name)] = len(frame)
    return rows


@pytest.mark.slow
def test_stock_client_reads_every_table_in_ranged_parts(every_table):
    published, profiles, ranged = every_table
    assert set(profiles) == {"wujiang", "jiashan", "pinghu", "jinshan"}
    assert published[("wujiang", "border_incidents")] > 5_000  # about what the demo shares
    assert read_every_table(profiles) == published
    # fsspec reads each Parquet file in parts: its footer, then the column chunks, each a 206 answer
    assert ranged["206"] >= 2 * len(published)
