"""Per-model execution times of one dbt run, from its target/run_results.json.

    python bench/bench_spark_node_times.py $PINGAN_HOME/dbt-spark/target/run_results.json [model ...]

Prints each model's seconds (the node's execution_time), its materialization (incremental or table) and
the total, largest first; with model names, only those. Used for the README's Spark incremental numbers:
run it on the run_results.json of a `pingan build --engine spark --spark-incremental` night.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def model_times(run_results: Path) -> list[tuple[str, float]]:
    """(model name, seconds) of every model node of the run, largest first."""
    results = json.loads(run_results.read_text(encoding="utf-8"))["results"]
    models = [r for r in results if r["unique_id"].startswith("model.")]
    return sorted(
        ((r["unique_id"].rsplit(".", 1)[-1], r["execution_time"]) for r in models), key=lambda t: -t[1]
    )


def main(argv: list[str]) -> None:
    path, wanted = Path(argv[0]), set(argv[1:])
    times = [(name, seconds) for name, seconds in model_times(path) if not wanted or name in wanted]
    for name, seconds in times:
        print(f"{seconds:8.2f} s  {name}")
    print(f"{sum(s for _, s in times):8.2f} s  total of {len(times)} models")


if __name__ == "__main__":
    main(sys.argv[1:])
