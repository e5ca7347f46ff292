"""Encryption at rest of the lake's Parquet files (raw zone and quarantine) under a key outside the lake.

Raw and quarantined rows hold the source's values, raw phones and ID numbers included. Both zones are
written with Parquet modular encryption, footer and every column (uniform), so without the key a file
cannot even be opened. The **lake key** is `PINGAN_LAKE_KEY` (hex; a secret store in prod) or
`$PINGAN_HOME/secrets/lake.key` (0600, generated in `local`), never in the lake or the repository; on
local disk the files are 0600. Two schemes, because two engines read the zones:

- **quarantine** (read by pyarrow only: the ingest writer, erasure): pyarrow's envelope scheme. Each file
  gets random data keys, wrapped by the lake key through `LakeKms` (AES-GCM) and stored in the file.
- **raw**: written with pyarrow's direct-key API under the **raw-zone file key**, derived from the lake
  key with HKDF, one data page per column chunk: the scheme DuckDB can also read, given the key
  (`PRAGMA add_parquet_key`, here `add_duckdb_key`; it cannot read pyarrow's wrapped keys). AES-GCM draws
  a random nonce per page, so one key over many files stays within its limits.

DuckDB 1.5.5 reads such files correctly only while no filter reaches the scan (a pushed-down, join or
top-N filter fails the AES tag check; tests/privacy/test_parquet_encryption_interop.py). So the warehouse
build, the restricted store and the quality checks read raw files with pyarrow (`Store.read_parquet`) and
hand DuckDB the decrypted rows; no DuckDB session of the pipeline holds a lake key. `duckdb_parquet_scan`
is for looking at the lake by hand (and for tests), with `OFFSET 0` against static filters.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LAKE_KEY_ENV = "PINGAN_LAKE_KEY"
LAKE_KEY_FILE_ENV = "PINGAN_LAKE_KEY_FILE"  # set for dbt's in-process connections by the build
MASTER_KEY_ID = "pingan-lake"
NONCE_BYTES = 12
RAW_KEY_INFO = b"pingan lake raw-zone parquet v1"  # HKDF context: a new version gives a new file key
DUCKDB_KEY_NAME = "pingan_lake"  # the name DuckDB sessions know the raw-zone file key by
ENCRYPTED_FOOTER_MAGIC = b"PARE"  # a Parquet file with an encrypted footer ends with this, a plain one PAR1


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

    # --- the raw zone: a direct key DuckDB can be given ---------------------------------------------
    @cached_property
    def raw_file_key(self) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=RAW_KEY_INFO).derive(
            self.master_key
        )

    def raw_encryption_properties(self) -> pe.FileEncryptionProperties:
        return pe.create_encryption_properties(self.raw_file_key)

    def raw_decryption_properties(self) -> pe.FileDecryptionProperties:
        # raw files written before the raw zone was encrypted stay readable
        return pe.create_decryption_properties(self.raw_file_key, allow_plaintext_files=True)

    def add_duckdb_key(self, con) -> None:
        """Give a DuckDB session the raw-zone file key (held in that session's memory only)."""
        secret = base64.b64encode(self.raw_file_key).decode()
        try:
            con.execute(f"PRAGMA add_parquet_key('{DUCKDB_KEY_NAME}', '{secret}')")
        except Exception as exc:  # never echo the statement: it holds the key
            raise LakeKeyError(f"DuckDB refused the raw-zone key: {type(exc).__name__}") from None


def duckdb_parquet_scan(encrypted: list[str], plain: list[str], options: str = "") -> str:
    """A FROM item reading both kinds of raw files. DuckDB 1.5.5 refuses a list mixing encrypted and plain
    files (files from before the raw zone was encrypted), and crashes on `union_by_name` with an
    `encryption_config` (an internal error, then a fatal one): so the plain files are one read_parquet and
    each encrypted file its own, combined with UNION ALL BY NAME (columns matched by name either way).
    It also fails the AES tag check when a filter is pushed into the scan of a file pyarrow encrypted:
    `OFFSET 0` keeps filters above the scan (tests/privacy/test_parquet_encryption_interop.py)."""
    opts = f", {options}" if options else ""
    scans = [f"SELECT * FROM read_parquet({_sql_list(plain)}{opts})"] if plain else []
    kept = [o for o in options.split(",") if o.strip() and not o.strip().startswith("union_by_name")]
    per_file = (
        "".join(f", {o.strip()}" for o in kept) + f", encryption_config = {{footer_key: '{DUCKDB_KEY_NAME}'}}"
    )
    scans += [
        f"SELECT * FROM (SELECT * FROM read_parquet({_sql_list([uri])}{per_file}) OFFSET 0)"
        for uri in encrypted
    ]
    if not scans:
        raise ValueError("a parquet scan needs at least one file")
    return "(" + " UNION ALL BY NAME ".join(scans) + ") AS lake_files"


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def lake_key_path(settings) -> Path:
    return settings.home / "secrets" / "lake.key"


def lake_crypto(settings) -> LakeCrypto:
    """The deployment's lake key: `PINGAN_LAKE_KEY`, else the key file (generated only in `local`)."""
    from pingan.core.pseudonym import load_secret_key

    return LakeCrypto(load_secret_key(settings, lake_key_path(settings), LAKE_KEY_ENV))
