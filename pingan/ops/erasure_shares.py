"""Erasure and correction in the partner shares, including the Delta versions published before.

A share holds the person as the partnership's re-keyed pseudonym (`p_…` of the hub pseudonym). A dataset
whose Delta table holds it in any file (a current or an older version, a change-data file) is affected:

1. its partner's shares are republished as a full snapshot from the changed warehouse (`publish --full`),
   as of the partner's newest published as-of date, so the new version never holds the person;
2. the table's history is then cut at that version: a Delta checkpoint is written for it, the log entries
   before it (their file statistics can hold a pseudonym), the change-data files and every data file the
   version does not read are deleted, and so are the signed snapshots before it. No older version can be
   read any more: time travel of the partner starts again at the erasure's version;
3. a dataset of an agreement no longer in force (nothing can be republished to it) is deleted whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from pingan.core.canonical import local_today
from pingan.core.settings import Settings
from pingan.core.storage import Store
from pingan.ops.subject import ValueChange
from pingan.sharing import delta
from pingan.sharing import manifest as mf
from pingan.sharing.agreements import Agreement, load_agreements
from pingan.sharing.keys import share_key
from pingan.sharing.pseudonymise import pseudonym as share_pseudonym
from pingan.sharing.publish import publish

DELTA_LOG = "_delta_log/"


@dataclass
class ShareCounts:
    datasets: list[str] = field(default_factory=list)  # partner/dataset that held the person
    files_deleted: int = 0  # data, change-data and log files of the versions before the erasure
    snapshots_deleted: int = 0
    republished: list[str] = field(default_factory=list)  # partner/dataset/snapshot id


def partner_change(settings: Settings, partner: str, hub_pseudonyms: ValueChange) -> ValueChange:
    """The hub pseudonyms' change as that partner's share holds them (re-keyed per partnership)."""
    key = share_key(partner, settings.home / "secrets", allow_generate=False)
    return ValueChange(
        {
            share_pseudonym(key, old).upper(): (None if new is None else share_pseudonym(key, new))
            for old, new in hub_pseudonyms.targets.items()
            if old.startswith("PS_")
        }
    )


def dataset_holds(shares: Store, prefix: str, change: ValueChange) -> bool:
    """Any Parquet file of the dataset's table (any version, change data too) holds a target."""
    for key in shares.list(prefix):
        if key.endswith(".parquet") and DELTA_LOG not in key and _file_holds(shares, key, change):
            return True
    return False


def _file_holds(shares: Store, key: str, change: ValueChange) -> bool:
    table = shares.read_parquet(key)
    return any(
        any(change.holds(v) for v in column.to_pylist())
        for column in table.columns
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    )


def change_shares(
    settings: Settings, lake: Store, shares: Store, hub_pseudonyms: ValueChange, today: date | None = None
) -> ShareCounts:
    counts = ShareCounts()
    agreements = load_agreements(settings.agreements_dir)
    for partner, agreement in sorted(agreements.items()):
        if not hub_pseudonyms.targets or not _partner_has_shares(shares, partner):
            continue
        change = partner_change(settings, partner, hub_pseudonyms)
        affected = [
            d for d in agreement.datasets if dataset_holds(shares, mf.dataset_prefix(partner, d), change)
        ]
        if not affected:
            continue
        counts.datasets += [f"{partner}/{d}" for d in affected]
        if not agreement.is_in_force(today or local_today()):
            for dataset in affected:
                counts.files_deleted += shares.delete_prefix(mf.dataset_prefix(partner, dataset))
            continue
        _republish(settings, lake, shares, agreement, counts)
        for dataset in affected:
            _cut_history(shares, mf.dataset_prefix(partner, dataset), counts)
    return counts


def _partner_has_shares(shares: Store, partner: str) -> bool:
    return bool(shares.list(f"share/{partner}/"))


def _republish(
    settings: Settings, lake: Store, shares: Store, agreement: Agreement, counts: ShareCounts
) -> None:
    as_of = max(
        (p.as_of for d in agreement.datasets if (p := _latest(shares, agreement.partner, d))),
        default=None,
    )
    if as_of is None:
        return
    for share in publish(settings, lake, shares, partners=[agreement.partner], as_of=as_of, full=True):
        counts.republished.append(f"{share.partner}/{share.dataset}/{share.snapshot_id}")


def _latest(shares: Store, partner: str, dataset: str) -> mf.LatestPointer | None:
    key = mf.dataset_prefix(partner, dataset) + mf.LATEST
    data = shares.get_bytes(key)
    return mf.read_pointer(json.loads(data), shares.uri(key)) if data else None


class ShareHistoryError(RuntimeError):
    """A share's history cannot be cut safely (its pointer is not at the newest version)."""


def _cut_history(shares: Store, prefix: str, counts: ShareCounts) -> None:
    """Keep only the version `latest` points at (the republished one): checkpoint it, delete the rest."""
    pointer = _latest(shares, *prefix.removeprefix("share/").rstrip("/").split("/", 1))
    if pointer is None:
        return
    version = pointer.delta_version
    newest = delta.open_table(shares, prefix).version()
    if newest != version:  # never delete files a newer version reads
        raise ShareHistoryError(
            f"{shares.uri(prefix)}: latest points at version {version}, the table is at {newest}; "
            "publish the dataset, then run the request again"
        )
    delta.open_table(shares, prefix, version).create_checkpoint()
    keep = {prefix + f.path for f in delta.files(shares, prefix, version)}
    current_snapshot = f"{mf.SNAPSHOTS}{pointer.snapshot_id}/"
    for key in shares.list(prefix):
        name = key[len(prefix) :]
        if name.startswith(mf.SNAPSHOTS):
            if not name.startswith(current_snapshot):
                shares.delete(key)
                counts.snapshots_deleted += name.endswith("/" + mf.MANIFEST)
        elif _older(name, version) or (
            name.endswith(".parquet") and not name.startswith(DELTA_LOG) and key not in keep
        ):
            shares.delete(key)
            counts.files_deleted += 1


def _older(name: str, version: int) -> bool:
    """A Delta log file (commit, checkpoint, checksum) of a version before `version`."""
    if not name.startswith(DELTA_LOG):
        return False
    stem = name[len(DELTA_LOG) :].split(".", 1)[0]
    return stem.isdigit() and int(stem) < version
