"""Benchmark: the sharing hot paths on a border-incident share, as `pingan publish` runs them.

    .venv/bin/python bench/bench_sharing.py [--rows 200000]

Synthetic shared rows (free-text disposition, handling unit, pseudonymised phones) and 2,000 person
names from source batches: the PII guard with and without the name check, pseudonymisation and keyed
record ids, and writing the snapshot as a Delta version. Not a test; it prints times.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pingan.core.storage import open_store  # noqa: E402
from pingan.sharing import delta  # noqa: E402
from pingan.sharing.pii_guard import scan  # noqa: E402
from pingan.sharing.pseudonymise import key_ids_column, pseudonymise_column  # noqa: E402

SURNAMES, GIVEN = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗", "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞"


def rows(n: int, rng: random.Random) -> pa.Table:
    outcomes = ["已调解", "已处置，双方和解", "移交派出所处理", "现场劝离", "已联系相关部门"]
    return pa.table({
        "record_id": [f"310118:QP110{20250301000000 + i}" for i in range(n)],
        "disposition": [rng.choice(outcomes) + f" 案{i % 997}" for i in range(n)],
        "handling_unit": [f"{rng.choice(['金泽', '朱家角', '练塘'])}派出所" for _ in range(n)],
        "caller_phone": [f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}" for _ in range(n)],
        "dispatch_to_arrival_seconds": pa.array([rng.randint(60, 1800) for _ in range(n)], pa.int64()),
    })  # fmt: skip


def timed(label: str, fn):
    started = time.perf_counter()
    result = fn()
    print(f"{label:<46} {time.perf_counter() - started:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    n = parser.parse_args().rows
    rng = random.Random(7)
    table = rows(n, rng)
    names = {rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN]) for _ in range(2000)}
    key = b"k" * 32
    print(f"{n:,} shared rows, {len(names):,} source-batch names")
    phones = timed("pseudonymise caller_phone", lambda: pseudonymise_column(key, table["caller_phone"]))
    ids = timed("key record_id per partnership", lambda: key_ids_column(key, table["record_id"]))
    treated = table.set_column(3, "caller_phone", phones).set_column(0, "record_id", ids)
    timed(
        "PII guard (patterns, numeric columns)",
        lambda: scan(treated, pseudonymised={"caller_phone", "record_id"}),
    )
    findings = timed("PII guard with the name check", lambda: scan(
        treated, pseudonymised={"caller_phone", "record_id"}, person_names=names))  # fmt: skip
    print(f"{'  findings':<46} {[(f.column, f.rule, f.rows) for f in findings]}")
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"file://{tmp}")
        store.ensure()
        timed(
            "write the snapshot as a Delta version", lambda: delta.write_version(store, "share/p/d/", treated)
        )


if __name__ == "__main__":
    main()
