"""A full snapshot's files are cut per month of the grant's as-of column, so a night's merge rewrites the
recent month it touches, not the whole history; the rows, the schema and the table's properties are those
of delta-rs's own overwrite, on disk and on S3."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from pingan.core.settings import load_settings
from pingan.core.storage import Store
from pingan.sharing import delta, incremental

PREFIX = "share/wujiang/events/"
START = datetime(2024, 9, 1, tzinfo=UTC)
PROPERTIES = incremental.table_properties(30)


def events(days: int = 180, *, dropped: set[str] = frozenset()) -> pa.Table:
    """One event every 8 hours over `days` days (about six months), then three without a time."""
    ids = [f"E{i:05d}" for i in range(days * 3 + 3)]
    times = [START + timedelta(hours=8 * i) for i in range(days * 3)] + [None, None, None]
    rows = [(i, t) for i, t in zip(ids, times, strict=True) if i not in dropped]
    return pa.table(
        {
            "event_id": pa.array([r[0] for r in rows], pa.string()),
            "discovered_at": pa.array([r[1] for r in rows], pa.timestamp("us", "UTC")),
            "town": pa.array(["朱家角镇"] * len(rows), pa.string_view()),  # a type pyarrow cannot reorder
            "note": pa.array(
                [f"{r[0]}: " + "巡查记录" * 60 for r in rows], pa.string()
            ),  # 90 rows a month > 16 kB
        }
    )


@pytest.fixture(params=["local", "s3"])
def shares(request, home, monkeypatch):
    if request.param == "local":
        store = Store(f"file://{home}/shares")
    else:
        for k, v in request.getfixturevalue("s3_server").env().items():
            monkeypatch.setenv(k, v)
        store = Store(f"s3://lay{uuid.uuid4().hex[:12]}-shares/pingan", load_settings().s3)
    store.ensure()
    return store


def rows_of(shares: Store, version: int | None = None) -> list[tuple]:
    con = duckdb.connect()
    con.register("t", delta.open_table(shares, PREFIX, version).to_pyarrow_table())
    return con.sql("SELECT event_id, discovered_at FROM t ORDER BY event_id").fetchall()


def file_months(shares: Store, version: int) -> dict[str, str]:
    """Path -> month of each of the version's files, from the statistics delta-rs wrote for it (the ones a
    merge skips files by); a file whose rows span two months fails."""
    actions = pa.table(delta.open_table(shares, PREFIX, version).get_add_actions(flatten=True)).to_pylist()
    months = {}
    for a in actions:
        first, last = a["min.discovered_at"], a["max.discovered_at"]
        assert (first is None) == (last is None), a["path"]
        assert first is None or first.strftime("%Y-%m") == last.strftime("%Y-%m"), a["path"]
        months[a["path"]] = first.strftime("%Y-%m") if first else "none"
    return months


def months_of_files(shares: Store, version: int) -> list[str]:
    return sorted(file_months(shares, version).values())


def test_a_full_snapshot_has_one_file_per_month_and_the_same_rows(shares):
    table = events()
    version = delta.write_version(shares, PREFIX, table, properties=PROPERTIES, time_column="discovered_at")
    assert rows_of(shares, version) == sorted(zip(table["event_id"].to_pylist(), table["discovered_at"].to_pylist(), strict=True))  # fmt: skip
    # September to February, and the rows without a time
    assert months_of_files(shares, version) == [
        "2024-09", "2024-10", "2024-11", "2024-12", "2025-01", "2025-02", "none"
    ]  # fmt: skip
    assert delta.open_table(shares, PREFIX).metadata().configuration == PROPERTIES
    assert not [k for k in shares.list(PREFIX) if "_staging/" in k]  # the staging tables are gone

    again = delta.write_version(shares, PREFIX, events(), properties=PROPERTIES, time_column="discovered_at")
    assert again == version + 1 and len(delta.files(shares, PREFIX, again)) == 7  # overwritten, not appended


def test_a_small_aggregate_stays_one_file_and_small_months_are_joined(shares):
    aggregate = events().select(["event_id", "discovered_at"])  # 90 rows a month of ~30 bytes each
    version = delta.write_version(
        shares, PREFIX, aggregate, properties=PROPERTIES, time_column="discovered_at"
    )
    assert len(delta.files(shares, PREFIX, version)) == 1  # 16 kB in all: not worth a file per month
    sparse = events(dropped={f"E{i:05d}" for i in range(543) if i % 12})  # 8 rows a month: 2 kB
    other = "share/wujiang/sparse_events/"
    version = delta.write_version(shares, other, sparse, properties=PROPERTIES, time_column="discovered_at")
    files = delta.files(shares, other, version)
    assert 1 < len(files) < 7 and sum(f.rows for f in files) == sparse.num_rows  # months joined to 16 kB


def test_a_nights_merge_of_the_last_month_rewrites_that_months_file_only(shares):
    version = delta.write_version(
        shares, PREFIX, events(), properties=PROPERTIES, time_column="discovered_at"
    )
    before = {f.path for f in delta.files(shares, PREFIX, version)}
    changed = pa.table(
        {
            "event_id": pa.array(["E00530"], pa.string()),
            "discovered_at": pa.array(
                [START + timedelta(hours=8 * 530)], pa.timestamp("us", "UTC")
            ),  # 25 Feb
            "town": pa.array(["练塘镇"], pa.string_view()),
        }
    )
    written = incremental.write_changes(
        shares, PREFIX, changed, pa.array(["E00531"]), key="event_id", base_version=version, updated=1,
        match_from=("discovered_at", "'2025-02-24T00:00:00Z'"),
    )  # fmt: skip
    assert written.mode == "merge" and len(written.removed) == 1  # February's file, not the history's
    assert file_months(shares, version)[written.removed[0]] == "2025-02"
    assert sorted(file_months(shares, written.version).values()) == months_of_files(shares, version)
    after = {f.path for f in delta.files(shares, PREFIX, written.version)}
    assert len(before - after) == 1 and len(after - before) == len(written.added) == 1
    assert rows_of(shares, written.version) == [r for r in rows_of(shares, version) if r[0] != "E00531"]


def test_a_new_schema_is_written_by_delta_rs_overwrite(shares):
    delta.write_version(shares, PREFIX, events(), properties=PROPERTIES, time_column="discovered_at")
    wider = events().append_column("grid_id", pa.array(["G1"] * events().num_rows))
    version = delta.write_version(shares, PREFIX, wider, properties=PROPERTIES, time_column="discovered_at")
    assert delta.open_table(shares, PREFIX, version).schema().to_arrow().names == wider.column_names
    assert len(rows_of(shares, version)) == wider.num_rows
    assert not [k for k in shares.list(PREFIX) if "_staging/" in k]
