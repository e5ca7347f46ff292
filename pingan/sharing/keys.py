"""Secrets for sharing: one pseudonymisation key per partnership, and the hub's Ed25519 signing key.

Production takes them from the environment (injected from the secret store):
    PINGAN_SHARE_KEY_<PARTNER>   HMAC key for that partnership: 64+ hex characters, or any 32+ byte string
    PINGAN_SHARE_SIGNING_KEY     Ed25519 private key: PKCS#8 PEM, or the 32-byte seed as 64 hex characters
With the embedded default (lake on local disk) a missing key is generated once under
$PINGAN_HOME/secrets/ (mode 0600) and reused, with a warning; with an S3 lake a missing key is an error.

Rotation: set a new value. Pseudonyms change with the key (manifests carry `pseudonym_key_id`, so a
partner sees the break), which is also how a partnership is cut off from linking old and new shares.
Keys never appear in logs, manifests or errors; only a one-way key id does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

SHARE_KEY_ENV = "PINGAN_SHARE_KEY_{partner}"
SIGNING_KEY_ENV = "PINGAN_SHARE_SIGNING_KEY"
MIN_KEY_BYTES = 32


class ShareKeyError(RuntimeError):
    pass


def share_key(
    partner: str, secrets_dir: Path, *, allow_generate: bool, generated: list[str] | None = None
) -> bytes:
    """generated: a list of the caller's that collects the key files made now (`report_generated`)."""
    env = SHARE_KEY_ENV.format(partner=partner.upper())
    value = os.environ.get(env)
    if value:
        key = decode_key(value)
        if len(key) < MIN_KEY_BYTES:
            raise ShareKeyError(f"{env} is shorter than {MIN_KEY_BYTES} bytes")
        return key
    path = secrets_dir / f"share_key_{partner}.hex"
    if not allow_generate and not path.exists():
        raise ShareKeyError(f"no pseudonymisation key for partner {partner!r}: set {env}")
    return bytes.fromhex(read_or_create(path, _new_hex_key, f"{env} for {partner}", generated))


def signing_key(
    secrets_dir: Path, *, allow_generate: bool, generated: list[str] | None = None
) -> Ed25519PrivateKey:
    value = os.environ.get(SIGNING_KEY_ENV)
    if value:
        return _load_private_key(value, SIGNING_KEY_ENV)
    path = secrets_dir / "share_signing_key.pem"
    if not allow_generate and not path.exists():
        raise ShareKeyError(f"no signing key for partner shares: set {SIGNING_KEY_ENV}")
    return _load_private_key(read_or_create(path, _new_pem, SIGNING_KEY_ENV, generated), str(path))


def _new_hex_key() -> str:
    return secrets.token_bytes(32).hex()


def _new_pem() -> str:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode("ascii")


def report_generated(secrets_dir: Path, generated: list[str]) -> None:
    """One warning for the keys a run generated (the embedded default), not one per key."""
    if generated:
        log.warning("generated %d key(s) under %s (embedded default; in production set PINGAN_SHARE_*): %s",
                    len(generated), secrets_dir, ", ".join(generated))  # fmt: skip


def key_id(key: bytes) -> str:
    """A short one-way label of a key, safe to publish: tells whether two shares used the same key."""
    return hashlib.sha256(b"pingan-share-key-id\0" + key).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def decode_key(value: str) -> bytes:
    value = value.strip()
    try:
        if len(value) >= 2 * MIN_KEY_BYTES and len(value) % 2 == 0:
            return bytes.fromhex(value)
    except ValueError:
        pass
    return value.encode("utf-8")


def _load_private_key(value: str, where: str) -> Ed25519PrivateKey:
    value = value.strip()
    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(value.encode("ascii"), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(value))
    except ValueError as exc:
        raise ShareKeyError(f"{where}: not an Ed25519 private key (PKCS#8 PEM or 64 hex characters)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ShareKeyError(f"{where}: not an Ed25519 key")
    return key


def read_or_create(path: Path, make, env_name: str, generated: list[str] | None = None) -> str:
    """The file's content, creating it (0600, complete or not at all, never overwritten) on first use.
    A created file's name goes to `generated` when given (the caller reports them once), else to the log."""
    if path.exists():
        return path.read_text(encoding="ascii")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    content = make()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(content)
    try:
        os.link(tmp, path)  # atomic and refuses to replace: a concurrent first use keeps one key
    except FileExistsError:
        return path.read_text(encoding="ascii")
    finally:
        tmp.unlink()
    if generated is not None:
        generated.append(path.name)
    else:
        log.warning("generated a new key at %s (embedded default); in production set %s", path, env_name)
    return content
