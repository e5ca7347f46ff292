"""The PII guard measured on a labelled corpus: precision and recall per type, and throughput.

    .venv/bin/python bench/bench_pii_guard.py [--texts 20000] [--rows 200000]

The corpus (pingan_sim.pii_corpus) places simulated names and identifiers in free text among the real
place and unit names of the reference data, in disguised forms, and half its texts are clean on purpose.
Targets: recall 100% on every identifier type, >= 99% on names in text. Then the redaction and the guard
run over a share-sized table (rows drawn from the corpus) and print rows per second.
"""

from __future__ import annotations

import argparse
import time

import pyarrow as pa

from pingan.core.settings import PROJECT_ROOT
from pingan.sharing.gazetteer import load_gazetteer
from pingan.sharing.pii_guard import scan
from pingan.sharing.redact import personal_spans, redact_table
from pingan_sim.pii_corpus import corpus, score

TARGETS = {"person_name": 0.99}  # every identifier type: 1.0


def spans_of(gazetteer, names):
    def spans(text: str):
        return [(s.kind, text[s.start : s.end]) for s in personal_spans(text, names, gazetteer)]

    return spans


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=200000)
    args = parser.parse_args()
    gazetteer = load_gazetteer(PROJECT_ROOT / "dbt" / "seeds", PROJECT_ROOT / "connectors")
    texts, names = corpus(2026, args.texts)
    names = frozenset(names)
    started = time.perf_counter()
    result = score(texts, spans_of(gazetteer, names))
    elapsed = time.perf_counter() - started
    print(f"corpus: {len(texts):,} texts ({sum(bool(t.labels) for t in texts):,} with personal data), "
          f"{len(names):,} names known to the hub")  # fmt: skip
    print(
        f"{'type':<15}{'found':>8}{'missed':>8}{'wrong':>8}{'precision':>11}{'recall':>9}{'target':>9}  met"
    )
    for kind in result.kinds():
        target = TARGETS.get(kind, 1.0)
        met = "yes" if result.recall(kind) >= target else "NO"
        print(f"{kind:<15}{result.found[kind]:>8}{result.missed[kind]:>8}{result.wrong[kind]:>8}"
              f"{result.precision(kind):>11.4f}{result.recall(kind):>9.4f}{target:>9.2f}  {met}")  # fmt: skip
    print(f"detection: {len(texts) / elapsed:,.0f} texts/s (one Python pass per text)")
    table_throughput(texts, names, gazetteer, args.rows)


def table_throughput(texts, names, gazetteer, rows: int) -> None:
    """Redaction then the guard over a share-sized table: most rows clean, as in a night's shares."""
    clean = [t.text for t in texts if not t.labels]
    dirty = [t.text for t in texts if t.labels]
    column = [dirty[i % len(dirty)] if i % 50 == 0 else clean[i % len(clean)] for i in range(rows)]
    table = pa.table({"record_id": [f"k{i}" for i in range(rows)], "disposition": column})
    started = time.perf_counter()
    redaction = redact_table(table, ["disposition"], names, gazetteer)
    redacted = time.perf_counter()
    findings = scan(redaction.table, person_names=names, places=gazetteer, key_column="record_id")
    done = time.perf_counter()
    masks = sum(redaction.counts.get("disposition", {}).values())
    print(f"table of {rows:,} rows (1 in 50 with personal data): redaction {redacted - started:.2f} s "
          f"({masks:,} masks), guard {done - redacted:.2f} s, findings left {len(findings)}")  # fmt: skip


if __name__ == "__main__":
    main()
