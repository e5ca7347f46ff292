"""The partner side: pull the latest snapshots with the partner's own credentials, verify them, query them.

`pingan partner pull --profile FILE` reads, per granted dataset, the signed `latest` pointer, then the
snapshot it names, and refuses (one line, nothing kept) unless:
- the pointer and the manifest are signed by a key the profile trusts (keys rotate: the profile lists
  trusted key ids, each document names the key that signed it);
- both name this partner and this dataset (a snapshot copied under another partner's prefix fails);
- the pointer is not older than the one this copy saw before (its sequence never goes back: rollback);
- the manifest is the one the pointer names (sha256) and every file matches its sha256.
The copy lands in DEST/<dataset>/<snapshot_id>/ and DEST/<partner>.duckdb gets one view per dataset.
`pingan partner verify PATH` runs the same signature, identity and hash checks on a local copy.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict

from pingan.core.settings import S3Settings
from pingan.core.storage import Store, open_store
from pingan.sharing import audit_head
from pingan.sharing import manifest as mf

log = logging.getLogger(__name__)
SEEN = ".pingan-seen.json"
Warn = Callable[[str], None]  # one line a pull reports without failing


class PartnerError(RuntimeError):
    """A snapshot the partner must not use; the message names the file and the failed check."""


class _S3(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str
    secure: bool = False
    region: str = "us-east-1"
    access_key: str
    secret_key: str


class PartnerProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str
    partner: str
    share_url: str
    datasets: list[str]
    trusted_keys: dict[str, str]  # key id -> PEM public key
    s3: _S3 | None = None

    def public_keys(self) -> dict:
        return {kid: load_pem_public_key(pem.encode("ascii")) for kid, pem in self.trusted_keys.items()}

    def store(self) -> Store:
        s3 = None
        if self.s3:
            s3 = S3Settings(
                self.s3.endpoint, self.s3.access_key, self.s3.secret_key, self.s3.secure, self.s3.region
            )
        return open_store(self.share_url, s3)


@dataclass(frozen=True)
class PulledSnapshot:
    dataset: str
    snapshot_id: str
    as_of: str
    rows: int
    path: Path
    new: bool  # False when this copy already held the snapshot
    delta_version: int | None = None
    files_downloaded: int = 0  # data files fetched from the share store (the others were already here)
    bytes_downloaded: int = 0
    # the signed manifest, fetched for every new snapshot, and its files.json when not rebuilt locally
    manifest_bytes: int = 0


def load_profile(path: Path) -> PartnerProfile:
    try:
        return PartnerProfile.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PartnerError(f"{path}: not a pingan partner profile: {str(exc).splitlines()[0]}") from None


def pull(
    profile: PartnerProfile,
    dest: Path,
    datasets: list[str] | None = None,
    *,
    warn: Warn = log.warning,
    now: datetime | None = None,
) -> list[PulledSnapshot]:
    """Pull and verify the latest snapshot of each dataset; `warn` gets one line for pointers older than
    the agreement's expected cadence (a stale or replayed pointer) and one for an audit head that went back."""
    store = profile.store()
    dest.mkdir(parents=True, exist_ok=True)
    seen = _read_seen(dest)
    pulled, pointers = [], []
    for dataset in datasets or profile.datasets:
        pointer = _verified_pointer(store, profile, dataset, seen.get(dataset))
        pulled.append(_pull_snapshot(store, profile, dest, pointer, seen.get(dataset)))
        seen[dataset] = {"sequence": pointer.sequence, "as_of": pointer.as_of.isoformat(),
                         "snapshot_id": pointer.snapshot_id, "delta_version": pointer.delta_version}  # fmt: skip
        _write_seen(dest, seen)
        pointers.append(pointer)
    register_views(dest, profile.partner, pulled)
    stale = stale_pointers(pointers, now or datetime.now(UTC))
    if stale:
        warn(stale)
    keep_audit_head(store, profile, dest, warn)
    return pulled


def _verified_pointer(
    store: Store, profile: PartnerProfile, dataset: str, seen: dict | None
) -> mf.LatestPointer:
    """The dataset's `latest` pointer: signed by a trusted key, naming this partner and dataset, not rolled back."""
    key = mf.dataset_prefix(profile.partner, dataset) + mf.LATEST
    where = store.uri(key)
    document = mf.verify_signed(store.get_bytes(key), store.get_bytes(key[: -len(mf.LATEST)] + mf.LATEST_SIGNATURE),
                                profile.public_keys(), where)  # fmt: skip
    _check_names(document, profile.partner, dataset, where)
    pointer = mf.read_pointer(document, where)
    _check_not_rolled_back(pointer, seen, where)
    return pointer


def _pull_snapshot(
    store: Store, profile: PartnerProfile, dest: Path, pointer: mf.LatestPointer, seen: dict | None
) -> PulledSnapshot:
    """Download (what is new of) the snapshot the pointer names into DEST/<dataset>/<id>/ and verify it there."""
    dataset, prefix = pointer.dataset, mf.dataset_prefix(profile.partner, pointer.dataset)
    manifest_key = prefix + pointer.manifest
    manifest_bytes = store.get_bytes(manifest_key)
    if manifest_bytes is None or mf.sha256(manifest_bytes) != pointer.manifest_sha256:
        raise PartnerError(f"{store.uri(manifest_key)}: not the manifest the signed latest pointer names")
    signature = store.get_bytes(manifest_key[: -len(mf.MANIFEST)] + mf.SIGNATURE)
    # the signed manifest only: its files are checked as they are downloaded, and all of them on disk
    # (verify_local), so a night's pull reads only the files the versions since the last pull added
    verified = mf.verify_manifest(manifest_bytes, signature, profile.public_keys(), store.uri(manifest_key),
                                  partner=profile.partner, dataset=dataset)  # fmt: skip
    manifest = mf.read_manifest(verified, store.uri(manifest_key))
    target = dest / dataset / manifest.snapshot_id
    new = not (target / mf.SIGNATURE).exists()
    fetched = (0, 0, 0)
    if new:
        earlier = _local_snapshot(dest / dataset, seen)
        fetched = _download(store, prefix, (manifest_bytes, signature), manifest, target, earlier)
    verify_local(target, profile)  # what is on disk, not what was in memory
    return PulledSnapshot(dataset, manifest.snapshot_id, manifest.as_of.isoformat(), manifest.rows, target, new,
                          pointer.delta_version, *fetched)  # fmt: skip


def stale_pointers(pointers: list[mf.LatestPointer], now: datetime) -> str | None:
    """One line naming the pointers published longer ago than their agreement's expected cadence: the hub
    has not published since, or someone serves an old signed pointer (a fresh copy has no history to tell)."""
    late = [p for p in pointers if now - p.published_at > timedelta(hours=p.expected_cadence_hours)]
    if not late:
        return None
    oldest = min(late, key=lambda p: p.published_at)
    hours = (now - oldest.published_at).total_seconds() / 3600
    return (
        f"{oldest.partner}: the signed latest pointer of {', '.join(p.dataset for p in late)} was published "
        f"{oldest.published_at:%Y-%m-%d %H:%M} UTC, {hours:.0f} h ago, longer than the agreement's expected "
        f"cadence of {oldest.expected_cadence_hours} h: a stale or replayed pointer (ask the hub)"
    )


def keep_audit_head(store: Store, profile: PartnerProfile, dest: Path, warn: Warn) -> int | None:
    """Keep the hub's signed audit-log head from the share in this copy: the highest one seen, as
    evidence the hub's `partners audit` compares its log with. A head that went back is reported."""
    key = audit_head.partner_head_key(profile.partner)
    document = store.get_bytes(key)
    if document is None:
        return None  # a hub that publishes no head (yet)
    signature = store.get_bytes(key[: -len(audit_head.HEAD_FILE)] + audit_head.HEAD_SIGNATURE)
    try:
        head = audit_head.read_head(document, signature, profile.public_keys(), store.uri(key))
    except mf.ManifestError as exc:
        warn(f"audit head not kept: {exc}")
        return None
    kept_path = dest / audit_head.COPY_HEAD
    if kept_path.is_file():
        kept = audit_head.SignedHead.model_validate_json(kept_path.read_bytes())
        if head.seq < kept.seq or (head.seq == kept.seq and head.hash != kept.hash):
            warn(f"{store.uri(key)}: the hub's audit log head went back from entry {kept.seq} to "
                 f"{head.seq} (truncated or rewritten?); kept the signed head of entry {kept.seq}")  # fmt: skip
            return kept.seq
    (dest / audit_head.COPY_SIGNATURE).write_bytes(signature)
    (dest / audit_head.COPY_HEAD).write_bytes(document)
    return head.seq


def verify_local(path: Path, profile: PartnerProfile) -> list[mf.SnapshotManifest]:
    """Verify every snapshot copy under path (a snapshot folder, a dataset folder or a pull destination):
    signatures and hashes, and the folders themselves: a file the manifest does not list, a snapshot
    folder without its signed manifest, or a dataset the last pull recorded that is gone is refused."""
    path = Path(path)
    manifests = [path / mf.MANIFEST] if (path / mf.MANIFEST).exists() else sorted(path.rglob(mf.MANIFEST))
    if not manifests:
        raise PartnerError(f"{path}: no {mf.MANIFEST} found (expected <dataset>/<snapshot_id>/{mf.MANIFEST})")
    _check_nothing_missing(path)
    trusted = profile.public_keys()
    out = []
    for manifest_path in manifests:
        folder = manifest_path.parent
        dataset = folder.parent.name  # the copy's layout says which dataset it claims to be

        try:
            verified = mf.verify_snapshot(
                _folder_reader(folder), mf.MANIFEST, "", trusted, partner=profile.partner, dataset=dataset
            )
            manifest = mf.read_manifest(verified, str(manifest_path))
        except mf.ManifestError as exc:
            raise PartnerError(f"{folder}: {exc}") from None
        _check_nothing_added(folder, manifest)
        out.append(manifest)
    _check_views(path, profile.partner)
    return out


def _check_views(path: Path, partner: str) -> None:
    """The pull destination's DuckDB views read exactly the files of the snapshots pulled last (a view
    re-pointed at another file is refused)."""
    db, seen = path / f"{partner}.duckdb", _read_seen(path)
    if not seen or not db.is_file():
        return
    with duckdb.connect(str(db), read_only=True) as con:
        views = dict(con.execute("select view_name, sql from duckdb_views() where not internal").fetchall())
    for dataset, last in sorted(seen.items()):
        folder = path / dataset / last["snapshot_id"]
        expected = {str(folder / mf.file_name(f)) for f in _local_files(folder)}
        read = set(re.findall(r"'([^']+\.parquet)'", views.get(dataset, "")))
        if dataset not in views or read != expected:
            raise PartnerError(f"{db}: view {dataset} does not read the verified files of {folder.name}")


def _check_nothing_added(folder: Path, manifest: mf.SnapshotManifest) -> None:
    listing = [mf.LISTING] if manifest.listing else []
    listed = {mf.MANIFEST, mf.SIGNATURE, *listing, *(mf.file_name(f) for f in _local_files(folder))}
    extra = sorted(p.name for p in folder.iterdir() if p.name not in listed)
    if extra:
        raise PartnerError(f"{folder}: {extra[0]} is not listed in the signed manifest ({len(extra)} such)")


def _check_nothing_missing(path: Path) -> None:
    """In a pull destination: every dataset the last pull recorded still has its snapshot, and every
    snapshot folder has its signed manifest."""
    seen = _read_seen(path)
    for dataset, last in sorted(seen.items()):
        if not (path / dataset / last["snapshot_id"] / mf.SIGNATURE).is_file():
            raise PartnerError(f"{path / dataset}: the snapshot {last['snapshot_id']} pulled last is gone")
    roots = [path] if seen else []
    for dataset_dir in (d for root in roots for d in root.iterdir() if d.is_dir()):
        for folder in (f for f in dataset_dir.iterdir() if f.is_dir()):
            if not (folder / mf.MANIFEST).is_file() or not (folder / mf.SIGNATURE).is_file():
                raise PartnerError(f"{folder}: a snapshot folder without its signed manifest")


def register_views(dest: Path, partner: str, pulled: list[PulledSnapshot]) -> Path:
    """DEST/<partner>.duckdb with one view per dataset over its latest local snapshot."""
    db = dest / f"{partner}.duckdb"
    with duckdb.connect(str(db)) as con:
        for snap in pulled:  # the files the verified manifest lists, never whatever lies in the folder
            files = sorted(str(snap.path / mf.file_name(f)) for f in _local_files(snap.path))
            if files:
                con.execute(
                    f'CREATE OR REPLACE VIEW "{snap.dataset}" AS SELECT * FROM read_parquet({files!r})'
                )
            else:  # an empty snapshot has no data file: the view is there, with no rows
                con.execute(f'CREATE OR REPLACE VIEW "{snap.dataset}" AS SELECT NULL AS no_rows WHERE false')
    return db


def _check_names(document: dict, partner: str, dataset: str, where: str) -> None:
    if document.get("partner") != partner or document.get("dataset") != dataset:
        raise PartnerError(
            f"{where}: names partner {document.get('partner')!r}, dataset {document.get('dataset')!r}, "
            f"not {partner!r}/{dataset!r}"
        )


def _check_not_rolled_back(pointer: mf.LatestPointer, seen: dict | None, where: str) -> None:
    if not seen:
        return
    # a hub-signed correction (`pingan partners repoint`) may step the as-of date back, never the sequence
    back_in_time = pointer.as_of.isoformat() < seen["as_of"] and pointer.correction is None
    older = pointer.sequence < seen["sequence"] or back_in_time
    replaced = pointer.sequence == seen["sequence"] and pointer.snapshot_id != seen["snapshot_id"]
    if older or replaced:
        raise PartnerError(
            f"{where}: rollback refused: pointer sequence {pointer.sequence} (as of {pointer.as_of}, "
            f"{pointer.snapshot_id}) is older than the one seen before, sequence {seen['sequence']} "
            f"(as of {seen['as_of']}, {seen['snapshot_id']})"
        )


def _local_manifest(folder: Path) -> mf.SnapshotManifest:
    """The manifest of a snapshot folder of this copy (verified when it was pulled, and by verify)."""
    path = folder / mf.MANIFEST
    return mf.read_manifest(json.loads(path.read_text(encoding="utf-8")), str(path))


def _folder_reader(folder: Path) -> mf.Reader:
    """A snapshot folder of this copy read as the share store is (key -> bytes, None when absent); the
    copy is flat, so only a key's last part names the file."""

    def read(key: str) -> bytes | None:
        file = folder / Path(key).name
        return file.read_bytes() if file.is_file() else None

    return read


def _local_files(folder: Path) -> list[mf.ManifestFile]:
    """The data files of a snapshot folder of this copy, as its manifest lists them (`files.json` checked
    against the manifest's hash)."""
    manifest = _local_manifest(folder)
    try:
        return mf.snapshot_files(_folder_reader(folder), "", manifest)
    except mf.ManifestError as exc:
        raise PartnerError(f"{folder}: {exc}") from None


@dataclass(frozen=True)
class LocalSnapshot:
    """The snapshot this copy pulled last: its files need no download, and the next manifest's listing is
    rebuilt from them."""

    folder: Path
    snapshot_id: str
    files: list[mf.ManifestFile]


def _local_snapshot(dataset_dir: Path, seen: dict | None) -> LocalSnapshot | None:
    if not seen:
        return None
    folder = dataset_dir / seen["snapshot_id"]
    if not (folder / mf.SIGNATURE).exists():
        return None
    try:
        return LocalSnapshot(folder, seen["snapshot_id"], _local_files(folder))
    except PartnerError as exc:  # a damaged copy is not built upon: the new snapshot is fetched whole
        log.warning("%s; not reused", exc)
        return None


def _listing(
    store: Store, snapshot: str, manifest: mf.SnapshotManifest, earlier: LocalSnapshot | None
) -> tuple[list[mf.ManifestFile], bytes | None, int]:
    """The snapshot's files, its `files.json` (None in format 2) and the bytes fetched for them: rebuilt
    from the copy of the snapshot the listing's change is since, else fetched from the store (a first
    pull, or nights missed); either way checked against the signed hash."""
    listing = manifest.listing
    if listing is None:
        return list(manifest.files or []), None, 0
    base = None  # the files the change is since: this copy's last snapshot, or none for a full snapshot
    if earlier is not None and listing.since == earlier.snapshot_id:
        base = earlier.files
    elif listing.since is None:
        base = []
    data = mf.rebuilt_listing(base, listing) if base is not None else None
    if data is not None:
        return mf.parse_listing(data, listing, mf.LISTING), data, 0
    data = store.get_bytes(snapshot + mf.LISTING)
    return mf.parse_listing(data, listing, store.uri(snapshot + mf.LISTING)), data, len(data or b"")


def _download(
    store: Store,
    prefix: str,
    signed: tuple[bytes, bytes],
    manifest: mf.SnapshotManifest,
    target: Path,
    earlier: LocalSnapshot | None,
) -> tuple[int, int, int]:
    """Copy the snapshot into target: files the last pulled snapshot holds with the same sha256 are linked
    from it, only the others (the files the versions since then added) are downloaded, each checked against
    the manifest before it is kept; then the verified manifest and signature (signed), which are written
    as they were verified, not read again. Returns (data files, their bytes, manifest and file list bytes)
    downloaded. The caller verifies every file's hash on disk afterwards."""
    target.mkdir(parents=True, exist_ok=True)
    snapshot = prefix + mf.SNAPSHOTS + manifest.snapshot_id + "/"
    listed, listing, listing_bytes = _listing(store, snapshot, manifest, earlier)
    have = {f.sha256: earlier.folder / mf.file_name(f) for f in earlier.files} if earlier else {}
    files = downloaded = 0
    for entry in listed:
        local = target / mf.file_name(entry)
        source = have.get(entry.sha256)
        if source is not None and source.is_file() and mf.sha256(source.read_bytes()) == entry.sha256:
            _link_or_copy(source, local)
            continue
        data = store.get_bytes(prefix + entry.path)
        if data is None:
            raise mf.ManifestError(f"{store.uri(prefix + entry.path)}: listed in the manifest but missing")
        if mf.sha256(data) != entry.sha256:  # not kept: the folder stays incomplete, the next pull retries
            raise mf.ManifestError(f"{store.uri(prefix + entry.path)}: sha256 differs from the manifest")
        local.write_bytes(data)
        files, downloaded = files + 1, downloaded + len(data)
    manifest_bytes, signature = signed
    if listing is not None:
        (target / mf.LISTING).write_bytes(listing)
    (target / mf.MANIFEST).write_bytes(manifest_bytes)
    # the signature last: a folder with a signature is complete
    (target / mf.SIGNATURE).write_bytes(signature)
    return files, downloaded, len(manifest_bytes) + listing_bytes


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)  # a hard link: one copy on disk; snapshots are never edited in place
    except OSError:
        shutil.copyfile(source, target)


def _read_seen(dest: Path) -> dict:
    path = dest / SEEN
    return json.loads(path.read_text()) if path.exists() else {}


def _write_seen(dest: Path, seen: dict) -> None:
    tmp = dest / (SEEN + ".tmp")
    tmp.write_text(json.dumps(seen, indent=2))
    tmp.replace(dest / SEEN)
