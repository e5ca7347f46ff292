"""Encryption at rest of the lake's quarantine files: Parquet modular encryption under a key outside the lake.

A quarantined row keeps the source's values as text (`value`, the whole `record`), raw phones and ID
numbers included. Its file is written with pyarrow's Parquet modular encryption, footer and every column
(uniform): each file gets random data keys, wrapped by the hub's **lake key** through `LakeKms` (AES-GCM,
the `cryptography` package) and stored wrapped in the file. Without the lake key the file cannot even be
opened. The key is `PINGAN_LAKE_KEY` (hex; a secret store in prod) or `$PINGAN_HOME/secrets/lake.key`
(0600, generated in `local`), never in the lake or the repository; on local disk the files are 0600.

Only pyarrow reads quarantine files (the ingest writer appending a blocked batch, erasure), so pyarrow's
envelope scheme is used. The raw zone's files stay plain for now: DuckDB, which the warehouse build reads
them with, cannot read this scheme (tests/privacy/test_parquet_encryption_interop.py).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from functools import cached_property

import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LAKE_KEY_ENV = "PINGAN_LAKE_KEY"
MASTER_KEY_ID = "pingan-lake"
NONCE_BYTES = 12


class LakeKeyError(OSError):
    """A file's data key was not wrapped by this lake key (a wrong or rotated key)."""


class LakeKms(pe.KmsClient):
    """Wraps a file's data keys with the lake key (AES-GCM, the master key id as associated data)."""

    def __init__(self, master_key: bytes):
        super().__init__()
        self._aead = AESGCM(master_key)

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, key_bytes, master_key_identifier.encode())
        return base64.b64encode(nonce + sealed).decode()

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        data = base64.b64decode(wrapped_key)
        try:
            return self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], master_key_identifier.encode())
        except InvalidTag:
            raise LakeKeyError(f"this lake key ({LAKE_KEY_ENV}) did not encrypt the file's keys") from None


@dataclass(frozen=True)
class LakeCrypto:
    """The lake key and the Parquet properties that encrypt and decrypt with it."""

    master_key: bytes

    @cached_property
    def _factory(self) -> pe.CryptoFactory:
        return pe.CryptoFactory(lambda _config: LakeKms(self.master_key))

    def encryption_properties(self) -> pe.FileEncryptionProperties:
        config = pe.EncryptionConfiguration(footer_key=MASTER_KEY_ID, uniform_encryption=True)
        return self._factory.file_encryption_properties(pe.KmsConnectionConfig(), config)

    def decryption_properties(self) -> pe.FileDecryptionProperties:
        return self._factory.file_decryption_properties(
            pe.KmsConnectionConfig(), pe.DecryptionConfiguration()
        )


def lake_crypto(settings) -> LakeCrypto:
    """The deployment's lake key: `PINGAN_LAKE_KEY`, else the key file (generated only in `local`)."""
    from pingan.core.pseudonym import load_secret_key

    return LakeCrypto(load_secret_key(settings, settings.home / "secrets" / "lake.key", LAKE_KEY_ENV))
