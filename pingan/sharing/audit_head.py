"""Witnesses of the audit log's completeness: its head (last sequence and hash), signed by the hub.

The hash chain (pingan.core.audit) proves order, not completeness: whoever can write the log can delete
its tail, or rewrite it and recompute every later hash. As Certificate Transparency's signed tree heads
do, the hub signs the log's head with its share signing key and hands it out with every publication:

    share/<partner>/audit_head.json + .sig   in every partner's share (the partner's pull keeps it)
    $PINGAN_HOME/audit/audit_head.json + .sig  in the hub's own state, apart from the share store

A partner's pull keeps the highest head it saw in its copy (`.pingan-audit-head.json`). `pingan partners
audit` then checks that the log still holds every witnessed entry with the same hash: a deleted log, a
deleted tail and a rewritten tail are each one line and exit 1. Entries appended since the newest head
(e.g. the share server's queries after the night's publication) are witnessed from the next publication on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, ValidationError

from pingan.core import audit
from pingan.core.storage import Store
from pingan.sharing import manifest as mf
from pingan.sharing.keys import ShareKeyError, public_key_id, signing_key

FORMAT = "pingan.audit-head/1"
HEAD_FILE = "audit_head.json"
HEAD_SIGNATURE = "audit_head.sig"
COPY_HEAD = ".pingan-audit-head.json"  # in a partner's pull destination
COPY_SIGNATURE = ".pingan-audit-head.sig"


class SignedHead(BaseModel):
    """The signed document: which log, its last entry, for whom (None: the hub's own copy), when."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str = FORMAT
    log: str  # the log's location, so a head is not mistaken for another deployment's
    partner: str | None
    seq: int
    hash: str
    signed_at: datetime
    signing_key_id: str


def partner_head_key(partner: str) -> str:
    return f"share/{partner}/{HEAD_FILE}"


def hub_head_dir(home: Path) -> Path:
    return home / "audit"


def sign_head(shares: Store, signer: Ed25519PrivateKey, partner: str | None) -> tuple[bytes, bytes] | None:
    """The head document of the log as it is now and its signature; None for an empty log."""
    last = audit.head(shares)
    if last is None:
        return None
    head = SignedHead(log=shares.uri(audit.PREFIX), partner=partner, seq=last.seq, hash=last.hash,
                      signed_at=datetime.now(UTC), signing_key_id=public_key_id(signer.public_key()))  # fmt: skip
    document = mf.encode(head.model_dump(mode="json"))
    return document, mf.sign(document, signer)


def publish_heads(shares: Store, partners: list[str], signer: Ed25519PrivateKey, home: Path) -> int | None:
    """Put the signed head into every partner's share and the hub's state; returns its sequence."""
    for partner in partners:
        signed = sign_head(shares, signer, partner)
        if signed is None:
            return None
        shares.put_bytes(partner_head_key(partner), signed[0], "application/json")
        shares.put_bytes(f"share/{partner}/{HEAD_SIGNATURE}", signed[1], "text/plain")
    return record_hub_head(shares, signer, home)


def record_hub_head(shares: Store, signer: Ed25519PrivateKey, home: Path) -> int | None:
    """The hub's own witness, under $PINGAN_HOME (not in the share store that holds the log)."""
    signed = sign_head(shares, signer, None)
    if signed is None:
        return None
    folder = hub_head_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    _replace(folder / HEAD_FILE, signed[0])
    _replace(folder / HEAD_SIGNATURE, signed[1])
    return json.loads(signed[0])["seq"]


def read_head(
    document: bytes | None, signature: bytes | None, trusted: Mapping[str, Ed25519PublicKey], where: str
) -> SignedHead:
    """The head after checking the hub's signature; ManifestError names the file when it does not verify."""
    verified = mf.verify_signed(document, signature, trusted, where)
    try:
        return SignedHead.model_validate(verified)
    except ValidationError as exc:
        raise mf.ManifestError(f"{where}: not a signed audit head: {str(exc).splitlines()[0]}") from None


def hub_public_keys(shares: Store, home: Path) -> dict[str, Ed25519PublicKey]:
    """The hub's signing key and every key published in the partners' shares (rotated keys stay valid)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for key in shares.list("share/"):
        if "/keys/" in key and key.endswith(".pub.pem"):
            public = load_pem_public_key(shares.get_bytes(key))
            keys[public_key_id(public)] = public
    try:
        current = signing_key(home / "secrets", allow_generate=False).public_key()
        keys[public_key_id(current)] = current
    except ShareKeyError:
        pass  # a hub that never published has no key; the published ones suffice
    return keys


def collect_witnesses(shares: Store, home: Path, copies: list[Path]) -> list[audit.Witness]:
    """Every signed head the hub can reach: partners' shares, its own state, partners' copies given."""
    trusted = hub_public_keys(shares, home)
    log = shares.uri(audit.PREFIX)
    found: list[tuple[str, SignedHead]] = []
    for key in shares.list("share/"):
        if key.count("/") == 2 and key.endswith("/" + HEAD_FILE):
            signature = shares.get_bytes(key[: -len(HEAD_FILE)] + HEAD_SIGNATURE)
            head = read_head(shares.get_bytes(key), signature, trusted, shares.uri(key))
            found.append((f"partner {key.split('/')[1]}'s share", head))
    places = [(hub_head_dir(home) / HEAD_FILE, hub_head_dir(home) / HEAD_SIGNATURE, "the hub's state")]
    places += [(Path(c) / COPY_HEAD, Path(c) / COPY_SIGNATURE, f"the partner copy at {c}") for c in copies]
    for document, signature, source in places:
        if document.is_file():
            found.append((source, read_head(document.read_bytes(), _read(signature), trusted, str(document))))
    return [
        audit.Witness(source, h.seq, h.hash, h.signed_at.isoformat(timespec="seconds"))
        for source, h in found
        if h.log == log
    ]


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
