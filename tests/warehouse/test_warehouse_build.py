"""Warehouse builds end to end: dbt over canonical Parquet, incremental history, atomic publication."""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import textwrap
from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pingan.core.settings import load_settings
from pingan.raw_zone import RawBatch
from pingan.sharing.publish import publish, share_store
from pingan.warehouse.build import WarehouseError, build

pytestmark = pytest.mark.slow

SHANGHAI = ZoneInfo("Asia/Shanghai")

DAY1 = datetime(2025, 3, 2, 2, 0, tzinfo=SHANGHAI)
DAY2 = datetime(2025, 3, 3, 2, 0, tzinfo=SHANGHAI)


def query(path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        return con.execute(sql).fetchall()


def day1_batches(raw_zone, reference) -> None:
    qp, wj, js = "qingpu_110_incidents", "wujiang_incidents", "jiashan_incidents"
    border_qp, inland_qp = reference.town("310118", border=True), reference.town("310118", border=False)
    raw_zone.incidents(
        qp,
        [
            {
                "source_record_id": f"QP110202503010000{i:02d}",
                "source_category_code": reference.code(qp, "criminal"),
                "town": border_qp if i < 3 else inland_qp,
            }
            for i in range(5)
        ],
        batch_id="qp-d1",
        ingested_at=DAY1,
    )
    raw_zone.incidents(
        wj,
        [
            {
                "source_record_id": "WJ0001",
                "source_category_code": reference.code(wj, "traffic"),
                "town": reference.town("320509", border=True),
                "disposition": "处置中",
            },
            {
                "source_record_id": "WJ0002",
                "source_category_code": "WJ-NOT-MAPPED",
                "town": reference.town("320509", border=False),
            },
        ],
        batch_id="wj-d1",
        ingested_at=DAY1,
    )
    raw_zone.incidents(
        js,
        [
            {
                "source_record_id": f"JS{i:06d}",
                "source_category_code": reference.code(js, "dispute"),
                "town": reference.town("330421", border=True),
            }
            for i in range(3)
        ],
        batch_id="js-d1",
        ingested_at=DAY1,
    )


def test_build_harmonises_categories_dedupes_and_publishes(wh_settings, raw_zone, reference):
    day1_batches(raw_zone, reference)
    # Wujiang re-sends WJ0001 later the same night, now closed: the later delivery wins
    raw_zone.incidents(
        "wujiang_incidents",
        [
            {
                "source_record_id": "WJ0001",
                "source_category_code": reference.code("wujiang_incidents", "traffic"),
                "town": reference.town("320509", border=True),
                "disposition": "已办结",
            },
        ],
        batch_id="wj-d1-resend",
        ingested_at=DAY1.replace(hour=3),
    )

    result = build(wh_settings, raw_zone.batches)

    wh = wh_settings.warehouse_path
    assert result.warehouse_path == wh and wh.is_symlink() and wh.resolve().name == "warehouse.a.duckdb"
    assert not list(wh.parent.glob("*.building"))  # the slot's in-progress marker is gone
    assert result.mart_rows["fct_incidents"] == 10
    assert result.mart_rows["dim_jurisdiction"] == 5
    assert {"fct_incidents", "mart_incident_trends", "dim_town", "stg_raw__incidents"} <= set(
        result.models_built
    )
    by_id = {
        r[0]: r[1:] for r in query(wh, "select record_id, category, disposition, batch_id from fct_incidents")
    }
    assert by_id["320509:WJ0001"] == ("traffic", "已办结", "wj-d1-resend")
    assert by_id["310118:QP11020250301000000"][0] == "criminal"
    assert by_id["330421:JS000000"][0] == "dispute"
    # an unmapped code stays null and is reported, never turned into 'other'
    assert by_id["320509:WJ0002"][0] is None
    assert any("assert_incident_categories_mapped" in w and "WJ-NOT-MAPPED" in w for w in result.warnings)
    assert query(wh, "select source_category_code from quality.assert_incident_categories_mapped") == [
        ("WJ-NOT-MAPPED",)
    ]

    border = query(wh, "select count(*) filter (where is_border_town), count(*) from fct_incidents")[0]
    assert border == (3 + 1 + 3, 10)
    # instants survive; the build's session renders them in Asia/Shanghai
    types = dict(
        query(
            wh,
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'fct_incidents'",
        )
    )
    assert types["reported_at"] == "TIMESTAMP WITH TIME ZONE"
    first = query(
        wh,
        "select reported_at, dispatch_to_arrival_seconds from fct_incidents "
        "where record_id = '330421:JS000000'",
    )[0]
    assert first[0] == datetime(2025, 3, 1, 8, 0, tzinfo=SHANGHAI)
    assert first[1] == 270
    trends = query(
        wh,
        "select incident_month, jurisdiction_code, category, incidents from mart_incident_trends "
        "where jurisdiction_code = '310118'",
    )
    assert [(str(m), j, c, n) for m, j, c, n in trends] == [("2025-03-01", "310118", "criminal", 5)]


def test_incremental_build_keeps_history_and_merges_redeliveries(wh_settings, raw_zone, reference):
    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)

    raw_zone.incidents(
        "jiashan_incidents",
        [
            {
                "source_record_id": "JS000001",
                "source_category_code": reference.code("jiashan_incidents", "criminal"),
                "town": reference.town("330421", border=True),
                "disposition": "已立案",
            },
            {
                "source_record_id": "JS000100",
                "source_category_code": reference.code("jiashan_incidents", "traffic"),
                "town": reference.town("330421", border=False),
            },
        ],
        batch_id="js-d2",
        ingested_at=DAY2,
    )
    result = build(wh_settings, raw_zone.batches, progress=(said := []).append)

    wh = wh_settings.warehouse_path
    assert said == ["dbt: 1 new batches, 0 withdrawn"]  # day 1 came from the warehouse's own mirror
    assert result.mart_rows["fct_incidents"] == 11
    assert query(
        wh, "select category, disposition from fct_incidents where record_id = '330421:JS000001'"
    ) == [("criminal", "已立案")]
    assert query(wh, "select count(*) from fct_incidents where batch_id in ('qp-d1', 'wj-d1')") == [(7,)]

    result = build(wh_settings, raw_zone.batches, full_refresh=True)
    assert result.mart_rows["fct_incidents"] == 11


def test_adding_a_missing_mapping_fixes_stored_rows_at_the_next_build(
    wh_settings, raw_zone, reference, connectors_dir
):
    day1_batches(raw_zone, reference)
    first = build(wh_settings, raw_zone.batches)
    assert any("WJ-NOT-MAPPED" in w for w in first.warnings)

    with open(connectors_dir / "incidents" / "wujiang.yaml", "a", encoding="utf-8") as fh:
        fh.write('  "WJ-NOT-MAPPED": {category: other, label: 新增代码}\n')
    second = build(wh_settings, raw_zone.batches)  # incremental, nothing new in the lake

    wh = wh_settings.warehouse_path
    assert query(wh, "select category from fct_incidents where record_id = '320509:WJ0002'") == [("other",)]
    assert second.mart_rows["fct_incidents"] == 10 and second.warnings == []


def test_failed_build_leaves_the_published_warehouse_untouched(wh_settings, raw_zone, reference, dbt_dir):
    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)
    wh = wh_settings.warehouse_path
    before = hashlib.sha256(wh.read_bytes()).hexdigest()

    (dbt_dir / "models" / "marts" / "fct_broken.sql").write_text(
        "select record_id, no_such_column from {{ ref('fct_incidents') }}\n"
    )
    with pytest.raises(WarehouseError, match="fct_broken"):
        build(wh_settings, raw_zone.batches)
    assert hashlib.sha256(wh.read_bytes()).hexdigest() == before
    # the half-built file is kept for inspection, never built upon
    assert (wh.parent / "warehouse.b.failed.duckdb").exists() and not (
        wh.parent / "warehouse.b.duckdb"
    ).exists()

    (dbt_dir / "models" / "marts" / "fct_broken.sql").unlink()
    (dbt_dir / "tests" / "assert_no_incidents_in_2025.sql").write_text(
        "select record_id from {{ ref('fct_incidents') }} where year(reported_at) = 2025\n"
    )
    with pytest.raises(WarehouseError, match="assert_no_incidents_in_2025"):
        build(wh_settings, raw_zone.batches)
    assert hashlib.sha256(wh.read_bytes()).hexdigest() == before


READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    count = lambda c: c.execute("select count(*) from fct_incidents").fetchone()[0]
    print(count(con), flush=True)
    sys.stdin.readline()  # the build runs now
    print(count(con), flush=True)
    con.close()
    print(count(duckdb.connect(sys.argv[1], read_only=True)), flush=True)
""")


def test_reader_keeps_working_while_a_build_publishes(wh_settings, raw_zone, reference):
    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)
    wh = wh_settings.warehouse_path

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(wh)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "10"
        raw_zone.incidents(
            "jiashan_incidents",
            [
                {
                    "source_record_id": "JS000200",
                    "source_category_code": reference.code("jiashan_incidents", "traffic"),
                    "town": reference.town("330421", border=False),
                },
            ],
            batch_id="js-d2",
            ingested_at=DAY2,
        )
        result = build(wh_settings, raw_zone.batches)
        assert result.mart_rows["fct_incidents"] == 11
        out, err = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    # the open connection still reads its snapshot; a new one sees the published build
    assert out.split() == ["10", "11"]


def test_builds_take_turns_between_two_files_without_copying(wh_settings, raw_zone, reference):
    """The spare file (published two builds ago) is brought up to date in place; a reader holding it
    makes the build start from a copy instead of writing under the reader."""
    wh = wh_settings.warehouse_path
    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)
    build(load_settings(), raw_zone.batches)  # settings read again: the published path is still the link
    assert wh.is_symlink() and wh.resolve().name == "warehouse.b.duckdb"
    assert sorted(p.name for p in wh.parent.glob("warehouse*.duckdb")) == [
        "warehouse.a.duckdb",
        "warehouse.b.duckdb",
        "warehouse.duckdb",
    ]
    a = wh.parent / "warehouse.a.duckdb"
    inode = a.stat().st_ino

    raw_zone.incidents(
        "jiashan_incidents",
        [
            {
                "source_record_id": "JS000300",
                "source_category_code": reference.code("jiashan_incidents", "traffic"),
                "town": reference.town("330421", border=False),
            }
        ],
        batch_id="js-d2",
        ingested_at=DAY2,
    )
    result = build(wh_settings, raw_zone.batches)
    assert wh.resolve() == a and a.stat().st_ino == inode  # written in place: no copy
    assert result.mart_rows["fct_incidents"] == 11

    # a reader still holds the spare (b): the next build must not write under it
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(wh.parent / "warehouse.b.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "10"
        result = build(wh_settings, raw_zone.batches)
        out, err = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    assert out.split()[0] == "10"  # the reader's file was not written under it
    assert wh.resolve().name == "warehouse.b.duckdb" and result.mart_rows["fct_incidents"] == 11


def test_the_build_after_a_full_refresh_starts_from_its_copy_not_the_older_spare(
    wh_settings, raw_zone, reference
):
    """The spare was built before the full refresh (here: by models without row_hash, the column a
    deployment added before running the full refresh): building on it would keep its rows with a null
    row_hash, which the share publication then takes for changed rows every night."""
    wh = wh_settings.warehouse_path
    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)
    build(wh_settings, raw_zone.batches)  # b published, a spare
    build(wh_settings, raw_zone.batches, full_refresh=True)  # a rebuilt from nothing, b now the spare
    older = wh.parent / "warehouse.b.duckdb"
    with duckdb.connect(str(older)) as con:  # as the models before the deployment left it
        con.execute("ALTER TABLE main.fct_incidents DROP COLUMN row_hash")
    build(wh_settings, raw_zone.batches)
    assert wh.resolve() == older
    with duckdb.connect(str(wh), read_only=True) as con:
        rows, hashed = con.execute("select count(*), count(row_hash) from main.fct_incidents").fetchone()
    assert rows == hashed == 10
    generations = {p.read_text() for p in wh.parent.glob("warehouse.*.duckdb.generation")}
    assert len(generations) == 1  # both slots of the full refresh's generation: the next one builds in place


def test_published_file_is_released_after_a_build(wh_settings, raw_zone, reference):
    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)
    # another process can take the write lock: nothing in this process holds the file open
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('select 1').fetchall()"
    subprocess.run([sys.executable, "-c", code, str(wh_settings.warehouse_path)], check=True, timeout=60)


def test_a_second_concurrent_build_is_refused(wh_settings, raw_zone):
    wh = wh_settings.warehouse_path
    wh.parent.mkdir(parents=True, exist_ok=True)
    with open(wh.with_name(f"{wh.name}.build.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(WarehouseError, match="another build"):
            build(wh_settings, raw_zone.batches)


def test_unknown_entity_is_refused(wh_settings):
    with pytest.raises(WarehouseError, match="unknown entities"):
        build(wh_settings, [RawBatch("f", "incidents", "310118", date(2025, 3, 1), "b1", ("x.parquet",))])


def test_partner_shares_publish_from_a_built_warehouse(wh_settings, raw_zone, reference, monkeypatch):
    """The repository's agreements fit the marts dbt builds (columns, filters, PII treatments)."""
    monkeypatch.delenv("PINGAN_SHARE_SIGNING_KEY", raising=False)
    day1_batches(raw_zone, reference)
    raw_zone.joint_operations(
        [{"op_id": "OP1", "mechanism": "联调", "operation_date": date(2025, 3, 1)}],
        batch_id="op-d1",
        ingested_at=DAY1,
    )
    build(wh_settings, raw_zone.batches)

    published = publish(
        wh_settings, raw_zone.lake, share_store(wh_settings), as_of=date(2025, 3, 2), today=date(2025, 3, 3)
    )
    shares = {(s.partner, s.dataset): s for s in published}
    assert {p for p, _ in shares} == {"wujiang", "jiashan", "pinghu", "jinshan"}
    assert shares["wujiang", "border_incidents"].rows == 3 + 1  # Qingpu's and Wujiang's border-town incidents
    assert shares["jiashan", "border_incidents"].rows == 3 + 3
    assert shares["pinghu", "joint_operations"].rows == shares["jinshan", "joint_operations"].rows == 1


@pytest.fixture
def s3_lake_env(home, s3_server, monkeypatch):
    monkeypatch.setenv("PINGAN_LAKE_URL", "s3://warehouse-test/lake")
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)


def test_build_over_an_s3_lake(s3_lake_env, wh_settings, raw_zone, reference):
    day1_batches(raw_zone, reference)
    assert raw_zone.files["incident"][0].startswith("s3://warehouse-test/lake/raw/")

    result = build(wh_settings, raw_zone.batches, lake=raw_zone.lake)

    assert result.mart_rows["fct_incidents"] == 10
    # marts are tables: reading them needs no S3 secret (raw and staging views would)
    assert query(wh_settings.warehouse_path, "select count(*) from fct_incidents") == [(10,)]


def test_seeds_load_only_when_they_changed(wh_settings, raw_zone, reference, dbt_dir):
    """The first build loads the seeds and the spare file starts as its copy: later builds skip `dbt seed`
    until a seed file changes; then each of the two files loads them once more."""
    day1_batches(raw_zone, reference)
    assert build(wh_settings, raw_zone.batches).seeds_loaded  # file a
    assert not build(wh_settings, raw_zone.batches).seeds_loaded  # file b: a copy of a
    assert not build(wh_settings, raw_zone.batches).seeds_loaded  # a again: the same seeds
    towns = dbt_dir / "seeds" / "ref_towns.csv"
    towns.write_text(towns.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert build(wh_settings, raw_zone.batches).seeds_loaded  # b
    assert build(wh_settings, raw_zone.batches).seeds_loaded  # a
    result = build(wh_settings, raw_zone.batches)
    assert not result.seeds_loaded and result.mart_rows["fct_incidents"] == 10
    assert build(wh_settings, raw_zone.batches, full_refresh=True).seeds_loaded


def test_duckdb_memory_and_threads_come_from_the_machine_or_the_environment(monkeypatch):
    import os

    import yaml

    from pingan.core.settings import PROJECT_ROOT
    from pingan.warehouse.build import MEMORY_ENV, THREADS_ENV, duckdb_resources

    monkeypatch.delenv(MEMORY_ENV, raising=False)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    found = duckdb_resources()
    assert 256 <= int(found[MEMORY_ENV].removesuffix("MB")) <= 640
    assert found[THREADS_ENV] == str(os.cpu_count())
    monkeypatch.setenv(MEMORY_ENV, "300MB")
    assert duckdb_resources()[MEMORY_ENV] == "300MB"
    profiles = yaml.safe_load((PROJECT_ROOT / "dbt" / "profiles.yml").read_text(encoding="utf-8"))
    for target in profiles["pingan"]["outputs"].values():
        if target["type"] == "duckdb":
            assert MEMORY_ENV in target["settings"]["memory_limit"], target
            assert THREADS_ENV in target["settings"]["threads"], target


def _yml_descriptions(dbt_dir, domain: str, model: str) -> tuple[str, dict[str, str]]:
    import yaml

    doc = yaml.safe_load(
        (dbt_dir / "models" / "marts" / domain / f"_{domain}__models.yml").read_text("utf-8")
    )
    spec = next(m for m in doc["models"] if m["name"] == model)
    return spec["description"], {c["name"]: c.get("description", "") for c in spec.get("columns", [])}


def test_the_warehouse_carries_the_yml_descriptions_as_comments(wh_settings, raw_zone, reference, dbt_dir):
    """persist_docs: `duckdb_tables()` / `duckdb_columns()` show what the models' yml says, for a table
    mart and for an incremental fact."""
    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)
    wh = wh_settings.warehouse_path
    for domain, model, column in (
        ("incidents", "mart_incident_trends", "incident_month"),
        ("incidents", "fct_incidents", "record_id"),
    ):
        table_doc, column_docs = _yml_descriptions(dbt_dir, domain, model)
        ((comment,),) = query(
            wh, f"select comment from duckdb_tables() where schema_name = 'main' and table_name = '{model}'"
        )
        assert comment and comment.strip() == table_doc.strip(), (model, comment)
        comments = dict(
            query(
                wh,
                "select column_name, comment from duckdb_columns() "
                f"where schema_name = 'main' and table_name = '{model}'",
            )
        )
        assert column_docs[column] and comments[column].strip() == column_docs[column].strip(), (
            model,
            column,
            comments[column],
        )
        described = [c for c, d in column_docs.items() if d]
        assert all(comments[c] for c in described), f"{model}: a described column has no comment"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_docs_prints_a_serve_command_that_runs_as_printed(wh_settings, raw_zone, reference, tmp_path):
    """`make docs` over a built warehouse, then its printed serve command in a shell that has none of the
    project's variables set (as a user's shell), from another folder: the docs answer on 127.0.0.1."""
    import json
    import os
    import signal
    import time
    from urllib.request import urlopen

    from pingan.core.settings import PROJECT_ROOT

    day1_batches(raw_zone, reference)
    build(wh_settings, raw_zone.batches)
    user_env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "DBT_"))}
    port, docs = _free_port(), tmp_path / "dbt-docs"
    make = subprocess.run(
        ["make", "-C", str(PROJECT_ROOT), "-o", ".venv/.installed-stamp", "docs"]
        + [f"DOCS_WAREHOUSE={wh_settings.warehouse_path}", f"DOCS_DB={tmp_path / 'docs.duckdb'}"]
        + [f"DOCS_DIR={docs}", f"DOCS_PORT={port}"],
        env=user_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert make.returncode == 0, make.stdout[-3000:] + make.stderr[-3000:]
    catalog = json.loads((docs / "catalog.json").read_text("utf-8"))
    assert "model.pingan.mart_incident_trends" in catalog["nodes"]
    (line,) = [x for x in make.stdout.splitlines() if x.startswith("serve on loopback")]
    command = line.split(": ", 1)[1]
    assert f"--host 127.0.0.1 --port {port}" in command

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = subprocess.Popen(
        ["bash", "-c", command], cwd=elsewhere, env=user_env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read()
            except OSError:
                time.sleep(0.5)
        assert page is not None, f"the printed command did not serve: {server.poll()} {command}"
        served = json.loads(urlopen(f"http://127.0.0.1:{port}/catalog.json", timeout=5).read())
        assert served["nodes"].keys() == catalog["nodes"].keys()
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
