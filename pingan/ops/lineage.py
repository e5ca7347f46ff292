"""Where a number comes from: share snapshot → warehouse table → dbt models → raw batches → source files.

Read from the records every stage already writes, so the chain is the one that produced the data:
the share's signed manifest in the share store (its table and the batch ids its rows came from), dbt's manifest.json from
the last build (the models between the table and the `raw` sources), and the raw zone's commit manifests
(each batch's source files with their sha256).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pingan import raw_zone
from pingan.core.canonical import ENTITY_FIELDS
from pingan.core.settings import Settings
from pingan.core.storage import Store, share_store
from pingan.sharing import manifest as share_manifest


class LineageError(LookupError):
    """The table or share is unknown, or no build has left dbt's manifest yet."""


@dataclass(frozen=True)
class SourceFile:
    name: str
    sha256: str | None


@dataclass(frozen=True)
class RawBatch:
    feed: str
    entity: str
    load_date: str
    batch_id: str
    rows_written: int
    files: list[str]
    sources: list[SourceFile]


@dataclass
class Lineage:
    target: str
    table: str
    snapshot: dict | None  # partner, dataset, snapshot_id, as_of, rows, path
    models: list[str]  # from the raw sources up to the table, each after what it reads
    raw_entities: list[str]
    batches: list[RawBatch] = field(default_factory=list)


def dbt_manifest_path(settings: Settings) -> Path:
    return settings.home / "dbt" / "target" / "manifest.json"


def upstream(manifest: dict, table: str) -> tuple[list[str], list[str]]:
    """(models in dependency order ending with `table`, raw entities they read) from dbt's manifest."""
    nodes = {
        n["name"]: uid for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed")
    }
    if table not in nodes:
        raise LineageError(f"no dbt model named {table!r} in {len(nodes)} models (see `pingan build`)")
    models = _models_in_dependency_order(manifest, nodes[table])
    return [manifest["nodes"][uid]["name"] for uid in models], _raw_entities(manifest, nodes[table])


def _models_in_dependency_order(manifest: dict, target: str) -> list[str]:
    """Unique ids of the models `target` is built from (itself included), each after the ones it reads."""
    order: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(target, False)]  # (node, its parents already pushed)
    while stack:
        uid, expanded = stack.pop()
        if expanded:
            if manifest["nodes"][uid]["resource_type"] == "model":
                order.append(uid)
            continue
        if uid in seen or uid.startswith("source."):
            continue
        seen.add(uid)
        stack.append((uid, True))
        parents = manifest["nodes"][uid].get("depends_on", {}).get("nodes", [])
        stack.extend((p, False) for p in reversed(parents))
    return order


def _raw_entities(manifest: dict, target: str) -> list[str]:
    """Canonical entities (raw sources, not the bookkeeping tables) anywhere upstream of `target`."""
    entities: set[str] = set()
    seen: set[str] = set()
    stack = [target]
    while stack:
        uid = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        if uid.startswith("source."):
            source = manifest["sources"][uid]
            if source["source_name"] == "raw" and source["name"] in ENTITY_FIELDS:
                entities.add(source["name"])
            continue
        stack.extend(manifest["nodes"][uid].get("depends_on", {}).get("nodes", []))
    return sorted(entities)


def _snapshot(shares: Store, share: str) -> dict:
    """The share's current snapshot as lineage prints it: its manifest, sources and path (the pointer and
    the manifest are read through their typed models, so a malformed one is named, not half-read)."""
    partner, _, dataset = share.partition("/")
    latest_key = share_manifest.dataset_prefix(partner, dataset) + share_manifest.LATEST
    latest = raw_zone.read_json(shares, latest_key)
    if not latest:
        raise LineageError(f"no published share {share!r} (partner/dataset; see `pingan publish`)")
    try:
        pointer = share_manifest.read_pointer(latest, shares.uri(latest_key))
        prefix = share_manifest.snapshot_prefix(partner, dataset, pointer.snapshot_id)
        document = raw_zone.read_json(shares, prefix + share_manifest.MANIFEST) or {}
        share_manifest.read_manifest(document, shares.uri(prefix + share_manifest.MANIFEST))
        source = share_manifest.read_sources(shares.get_bytes, prefix, document)  # the batch ids, beside it
    except share_manifest.ManifestError as exc:
        raise LineageError(str(exc)) from None
    return {**document, "source": source, "path": shares.uri(prefix)}


def trace(settings: Settings, lake: Store, target: str) -> Lineage:
    """The chain behind a warehouse table (`fct_incidents`) or a share (`<partner>/<dataset>`)."""
    snapshot = _snapshot(share_store(settings), target) if "/" in target else None
    table = snapshot["source"]["table"] if snapshot else target
    path = dbt_manifest_path(settings)
    if not path.exists():
        raise LineageError(f"{path}: no dbt manifest yet; run `pingan build` first")
    models, entities = upstream(json.loads(path.read_text(encoding="utf-8")), table)
    wanted = set(snapshot["source"]["batch_ids"]) if snapshot else None
    batches = [
        RawBatch(
            m.feed,
            m.entity,
            m.load_date.isoformat(),
            m.batch_id,
            m.rows_written,
            [lake.uri(k) for k in m.files.raw],
            [SourceFile(s["name"], s.get("sha256")) for s in m.sources],
        )
        for m in raw_zone.committed_manifest_records(lake)
        if m.entity in entities and (wanted is None or m.batch_id in wanted)
    ]
    batches.sort(key=lambda b: (b.feed, b.load_date))
    return Lineage(target, table, snapshot, models, entities, batches)


def as_text(lineage: Lineage) -> list[str]:
    """The chain as lines, from the published end back to the files partners delivered."""
    lines = []
    if lineage.snapshot:
        s = lineage.snapshot
        lines.append(
            f"share {lineage.target} snapshot {s['snapshot_id']} (as of {s['as_of']}, {s['rows']:,} rows) "
            f"at {s['path']}"
        )
    lines.append(f"  ← table {lineage.table}")
    lines.append(f"  ← models {' ← '.join(reversed(lineage.models))}")
    lines.append(f"  ← raw {', '.join(lineage.raw_entities)}: {len(lineage.batches)} committed batch(es)")
    for b in lineage.batches:
        lines.append(
            f"    ← batch {b.feed} {b.load_date} {b.batch_id} ({b.rows_written:,} rows) {', '.join(b.files)}"
        )
        for src in b.sources:
            digest = f" sha256 {src.sha256[:12]}" if src.sha256 else ""
            lines.append(f"      ← source {src.name}{digest}")
    return lines
