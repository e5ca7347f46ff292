"""Recipient credentials derived from the agreements: one S3 key pair and one bearer token per partner.

Both derive (HMAC-SHA256) from one hub secret and the agreement's partner, version and text hash, so
nothing per partner has to be stored, and a new agreement version rotates them (the old ones stop
working once provisioning and the share server see the new agreement):
    PINGAN_SHARE_RECIPIENT_KEY   64+ hex characters or any 32+ byte string (generated under
                                 $PINGAN_HOME/secrets/ for the embedded default, like the other keys)
The secrets go only into the partner's profile files (mode 0600) and to the object store's admin API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pingan.sharing.agreements import Agreement
from pingan.sharing.keys import MIN_KEY_BYTES, ShareKeyError, decode_key, read_or_create

RECIPIENT_KEY_ENV = "PINGAN_SHARE_RECIPIENT_KEY"


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"S3Credentials(access_key={self.access_key!r})"


def recipient_key(secrets_dir: Path, *, allow_generate: bool) -> bytes:
    value = os.environ.get(RECIPIENT_KEY_ENV)
    if value:
        key = decode_key(value)
        if len(key) < MIN_KEY_BYTES:
            raise ShareKeyError(f"{RECIPIENT_KEY_ENV} is shorter than {MIN_KEY_BYTES} bytes")
        return key
    path = secrets_dir / "share_recipient_key.hex"
    if not allow_generate and not path.exists():
        raise ShareKeyError(f"no recipient key for partner credentials: set {RECIPIENT_KEY_ENV}")
    return bytes.fromhex(read_or_create(path, lambda: secrets.token_bytes(32).hex(), RECIPIENT_KEY_ENV))


def _derive(key: bytes, label: str, agreement: Agreement) -> bytes:
    message = "\0".join([label, agreement.partner, str(agreement.version), agreement.text_sha256])
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def bearer_token(key: bytes, agreement: Agreement) -> str:
    return "pgn_" + base64.urlsafe_b64encode(_derive(key, "bearer", agreement)).decode("ascii").rstrip("=")


def s3_credentials(key: bytes, agreement: Agreement) -> S3Credentials:
    secret = base64.urlsafe_b64encode(_derive(key, "s3-secret", agreement)).decode("ascii").rstrip("=")
    return S3Credentials(f"pingan-share-{agreement.partner}", secret)


def tokens_match(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
