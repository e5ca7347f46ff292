"""Snapshot manifests: what a partner needs to trust a share without trusting the transport.

A snapshot is `share/<partner>/<dataset>/<snapshot_id>/` holding its data files, `manifest.json` (files
with sha256 and row counts, schema, agreement version, source batches, quality) and `manifest.sig`, the
base64 Ed25519 signature of the exact manifest bytes. The partner pins the hub's public key out of band
(a copy sits at `share/<partner>/signing_key.pub.pem`, and the manifest names its `signing_key_id`).
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pingan.storage import Store

FORMAT = "pingan.share/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
LATEST = "latest.json"


class ManifestError(RuntimeError):
    """A snapshot that does not verify: bad signature, missing or altered file."""


def dataset_prefix(partner: str, dataset: str) -> str:
    return f"share/{partner}/{dataset}/"


def snapshot_prefix(partner: str, dataset: str, snapshot_id: str) -> str:
    return f"{dataset_prefix(partner, dataset)}{snapshot_id}/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(manifest: dict) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def sign(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    return base64.b64encode(key.sign(manifest_bytes)) + b"\n"


def verify_snapshot(store: Store, prefix: str, public_key: Ed25519PublicKey) -> dict:
    """The manifest of the snapshot under prefix, after checking its signature and every file's hash."""
    manifest_bytes = store.get_bytes(prefix + MANIFEST)
    signature = store.get_bytes(prefix + SIGNATURE)
    if manifest_bytes is None or signature is None:
        raise ManifestError(f"{prefix}: incomplete snapshot (no {MANIFEST} or {SIGNATURE})")
    try:
        public_key.verify(base64.b64decode(signature), manifest_bytes)
    except (InvalidSignature, ValueError) as exc:
        raise ManifestError(f"{prefix}{MANIFEST}: signature does not verify") from exc
    manifest = json.loads(manifest_bytes)
    for entry in manifest["files"]:
        data = store.get_bytes(prefix + entry["path"])
        if data is None:
            raise ManifestError(f"{prefix}{entry['path']}: listed in the manifest but missing")
        if sha256(data) != entry["sha256"]:
            raise ManifestError(f"{prefix}{entry['path']}: sha256 differs from the manifest")
    return manifest
