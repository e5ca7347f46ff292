"""Snapshot manifests and the `latest` pointer: what a partner needs to trust a share without the transport.

A dataset `share/<partner>/<dataset>/` is a Delta table; each snapshot has `snapshots/<id>/manifest.json`
(partner, dataset, delta_version, schema, agreement, source batches and their quality, signing_key_id, and
its `listing`) and `manifest.sig`, the base64 Ed25519 signature of the exact manifest bytes. Every data file
of the snapshot, with sha256 and rows, is in `files.json` beside the manifest, which the manifest names by
sha256; the manifest itself carries only the files added and removed since the snapshot before. A partner
holding that snapshot rebuilds the listing from its own copy and checks it against the signed hash, so a
night's manifest grows with the night's files, not with the table's history (format 2 listed every file
inline; such manifests are still read).
`latest.json` + `latest.sig` is the signed pointer to the current snapshot, with a `sequence` that only
grows, so a partner refuses a pointer older than one it has seen (rollback). The partner pins the hub's
public keys out of band, by key id: keys can rotate, and a manifest names the key that signed it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

FORMAT = "pingan.share/3"
MANIFEST = "manifest.json"
LISTING = "files.json"  # beside the manifest: every data file of the snapshot (format 3)
SIGNATURE = "manifest.sig"
LATEST = "latest.json"
LATEST_SIGNATURE = "latest.sig"
SNAPSHOTS = "snapshots/"
SOURCES = "sources.json"  # the snapshot's source batches, named in the manifest by sha256
SOURCE_CHUNKS = "sources/"  # under the dataset prefix: the batches of one load month (source_chunks.py)
SOURCE_CHUNK_PATH = re.compile(r"sources/(\d{4}-\d{2}|unknown)-[0-9a-f]{16}\.json")

Reader = Callable[[str], bytes | None]  # key -> bytes, None when absent


class ManifestError(RuntimeError):
    """A snapshot that does not verify: bad signature, wrong partner or dataset, missing or altered file."""


DEFAULT_CADENCE_HOURS = 48


class Correction(BaseModel):
    """A hub-signed step back of the pointer (`pingan partners repoint`), so partners accept it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str
    by: str
    replaces: str | None


class LatestPointer(BaseModel):
    """The signed `latest.json`: which snapshot is current, and when the hub last said so.

    `published_at` is renewed by every publication (also when the snapshot is unchanged), so a partner
    can tell a pointer older than the agreement's `expected_cadence_hours`: a stale or replayed one."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str = FORMAT
    partner: str
    dataset: str
    snapshot_id: str
    as_of: date
    delta_version: int | None = None
    manifest: str  # the manifest's key under the dataset prefix
    manifest_sha256: str
    sequence: int  # only grows: a partner refuses a pointer older than one it has seen
    signing_key_id: str
    # pointers signed before the field was renamed carry `updated_at`
    published_at: datetime = Field(validation_alias=AliasChoices("published_at", "updated_at"))
    expected_cadence_hours: int = DEFAULT_CADENCE_HOURS
    correction: Correction | None = None

    def encode(self) -> bytes:
        return encode(self.model_dump(mode="json", exclude_none=True))


class ManifestFile(BaseModel):
    """A data file of the snapshot, relative to the dataset prefix, with its sha256."""

    model_config = ConfigDict(extra="allow", frozen=True)
    path: str
    sha256: str
    bytes: int | None = None
    rows: int | None = None


class Listing(BaseModel):
    """The manifest's `listing`: the sha256 of `files.json` (every data file of the snapshot) and what the
    snapshot `since` (None: nothing) added and removed, so a partner holding `since` needs no download."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: Literal["files.json"] = LISTING
    sha256: str
    count: int
    since: str | None
    added: list[ManifestFile]
    removed: list[str]


def encode_listing(files: list[ManifestFile]) -> bytes:
    """`files.json`: the files sorted by path, so the hub and a partner rebuilding it write equal bytes."""
    return encode({"files": [f.model_dump(mode="json") for f in sorted(files, key=lambda f: f.path)]})


def listing_change(
    files: list[ManifestFile], earlier: list[ManifestFile], since: str | None
) -> tuple[bytes, Listing]:
    """`files.json` and the manifest's `listing` of a snapshot with `files`, against the `earlier`
    snapshot's files (`since`)."""
    data = encode_listing(files)
    before = {f.path: f for f in earlier}
    now = {f.path for f in files}
    added = [f for f in files if before.get(f.path) != f]
    removed = sorted(p for p in before if p not in now)
    return data, Listing(sha256=sha256(data), count=len(files), since=since, added=added, removed=removed)


def rebuilt_listing(earlier: list[ManifestFile], listing: Listing) -> bytes | None:
    """`files.json` rebuilt from the files of the snapshot `listing.since` (the caller's verified copy) and
    the change; None when it is not the listing the signed manifest names."""
    replaced = {f.path for f in listing.added} | set(listing.removed)
    kept = [f for f in earlier if f.path not in replaced]
    data = encode_listing(kept + list(listing.added))
    return data if sha256(data) == listing.sha256 else None


def parse_listing(data: bytes | None, listing: Listing, where: str) -> list[ManifestFile]:
    """The files of a `files.json`, after checking it is the one the signed manifest names."""
    if data is None or sha256(data) != listing.sha256:
        raise ManifestError(f"{where}: missing or not the file list the manifest names")
    return [ManifestFile.model_validate(f) for f in json.loads(data)["files"]]


class SnapshotManifest(BaseModel):
    """The signed `manifest.json` of a snapshot, as every reader in sharing/ sees it (the fields they use
    are typed; the rest, e.g. treatments, quality and the incremental chain, is kept as written)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    format: str
    partner: str
    dataset: str
    snapshot_id: str
    as_of: date
    published_on: date
    created_at: datetime
    delta_version: int | None = None
    files: list[ManifestFile] | None = None  # format 2: every data file inline
    listing: Listing | None = None  # format 3: files.json by sha256, and the change since the last one
    rows: int
    signing_key_id: str
    share_fingerprint: str | None = None
    source: dict


def file_name(entry: ManifestFile) -> str:
    """A file's name as a partner's copy holds it (flat in the snapshot folder)."""
    return entry.path.rsplit("/", 1)[-1]


def snapshot_files(read: Reader, snapshot_prefix: str, manifest: SnapshotManifest) -> list[ManifestFile]:
    """Every data file of the snapshot: inline (format 2), or `files.json` checked against the manifest."""
    if manifest.files is not None:
        return manifest.files
    if manifest.listing is None:
        raise ManifestError(f"{snapshot_prefix}{MANIFEST}: lists no files (neither `files` nor `listing`)")
    return parse_listing(read(snapshot_prefix + LISTING), manifest.listing, snapshot_prefix + LISTING)


def read_manifest(document: dict, where: str) -> SnapshotManifest:
    try:
        return SnapshotManifest.model_validate(document)
    except ValidationError as exc:
        raise ManifestError(f"{where}: not a snapshot manifest: {str(exc).splitlines()[0]}") from None


def read_pointer(document: dict, where: str) -> LatestPointer:
    try:
        return LatestPointer.model_validate(document)
    except ValidationError as exc:
        raise ManifestError(f"{where}: not a latest pointer: {str(exc).splitlines()[0]}") from None


def dataset_prefix(partner: str, dataset: str) -> str:
    return f"share/{partner}/{dataset}/"


def snapshot_prefix(partner: str, dataset: str, snapshot_id: str) -> str:
    return f"{dataset_prefix(partner, dataset)}{SNAPSHOTS}{snapshot_id}/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(document: dict) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def sign(document_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    return base64.b64encode(key.sign(document_bytes)) + b"\n"


def verify_signed(
    document_bytes: bytes | None,
    signature: bytes | None,
    trusted: Mapping[str, Ed25519PublicKey],
    where: str,
) -> dict:
    """The document, after checking it is signed by the trusted key it names."""
    if document_bytes is None or signature is None:
        raise ManifestError(f"{where}: incomplete (document or signature missing)")
    try:
        document = json.loads(document_bytes)
    except ValueError:
        raise ManifestError(f"{where}: not JSON") from None
    key_id = document.get("signing_key_id")
    key = trusted.get(key_id)
    if key is None:
        raise ManifestError(
            f"{where}: signed with key {key_id!r}, which is not among the trusted keys "
            f"({', '.join(sorted(trusted)) or 'none'})"
        )
    try:
        key.verify(base64.b64decode(signature), document_bytes)
    except (InvalidSignature, ValueError):
        raise ManifestError(f"{where}: signature does not verify with key {key_id}") from None
    return document


def verify_snapshot(
    read: Reader,
    manifest_key: str,
    files_prefix: str,
    trusted: Mapping[str, Ed25519PublicKey],
    *,
    partner: str,
    dataset: str,
) -> dict:
    """The manifest at manifest_key after checking its signature, that it names this partner and dataset,
    and every listed file (under files_prefix) against its sha256."""
    snapshot = manifest_key[: -len(MANIFEST)]
    manifest = verify_manifest(
        read(manifest_key),
        read(snapshot + SIGNATURE),
        trusted,
        manifest_key,
        partner=partner,
        dataset=dataset,
    )
    for entry in snapshot_files(read, snapshot, read_manifest(manifest, manifest_key)):
        data = read(files_prefix + entry.path)
        if data is None:
            raise ManifestError(f"{files_prefix}{entry.path}: listed in the manifest but missing")
        if sha256(data) != entry.sha256:
            raise ManifestError(f"{files_prefix}{entry.path}: sha256 differs from the manifest")
    return manifest


def verify_manifest(
    document_bytes: bytes | None,
    signature: bytes | None,
    trusted: Mapping[str, Ed25519PublicKey],
    where: str,
    *,
    partner: str,
    dataset: str,
) -> dict:
    """The manifest after checking its signature and that it names this partner and dataset; its files
    are checked where they are read (verify_snapshot, or a partner's download of only the new ones)."""
    manifest = verify_signed(document_bytes, signature, trusted, where)
    if manifest.get("partner") != partner or manifest.get("dataset") != dataset:
        raise ManifestError(
            f"{where}: manifest is for partner {manifest.get('partner')!r}, dataset "
            f"{manifest.get('dataset')!r}, not {partner!r}/{dataset!r}"
        )
    return manifest


def read_sources(read: Reader, snapshot_prefix: str, manifest: dict) -> dict:
    """The manifest's `source` with its batch ids and quality records (`sources.json`, checked against the
    sha256 the signed manifest names); a manifest that lists them inline is returned as it is."""
    source = manifest["source"]
    if "batch_ids" in source:
        return source
    data = read(snapshot_prefix + source["batches_file"])
    if data is None or sha256(data) != source["batches_sha256"]:
        raise ManifestError(
            f"{snapshot_prefix}{source['batches_file']}: missing or not the file the manifest names"
        )
    listed = json.loads(data)
    if "chunks" not in listed:  # the earlier one-file form: every batch in sources.json itself
        return {**source, "batch_ids": listed["batch_ids"], "batches": listed["batches"]}
    batches = [b for chunk in listed["chunks"] for b in _read_chunk(read, snapshot_prefix, chunk)]
    batches.sort(key=lambda b: b["batch_id"])
    return {**source, "batch_ids": [b["batch_id"] for b in batches], "batches": batches}


def _read_chunk(read: Reader, snapshot_prefix: str, chunk: dict) -> list[dict]:
    """One month's batch records (sharing/source_chunks.py), checked against the sha256 `sources.json`
    names; the chunk lies under the dataset prefix, beside `snapshots/`."""
    path = str(chunk.get("path", ""))
    if not SOURCE_CHUNK_PATH.fullmatch(path):
        raise ManifestError(f"{snapshot_prefix}{SOURCES}: chunk path {path!r} is not a chunk under sources/")
    key = snapshot_prefix.rsplit(SNAPSHOTS, 1)[0] + path
    data = read(key)
    if data is None or sha256(data) != chunk["sha256"]:
        raise ManifestError(f"{key}: missing or not the source batches `sources.json` names")
    return json.loads(data)["batches"]
