"""Keyed pseudonyms for personal data inside the hub (the analysts' tier never holds raw values).

A person identifier (phone, ID number, name) becomes `ps_` + 24 letters a-p spelling the first 96 bits of
HMAC-SHA256(hub key, normalised value) (letters, so a pseudonym never looks like a phone or ID number): stable within the hub, so distinct and repeat callers still count,
and not reversible without the key. Lists (`;`-separated ID numbers or names) are pseudonymised element by
element and keep their order.

The hub key comes from the deployment: `PINGAN_HUB_KEY` (hex, from a secret store in `prod`), else the key
file `$PINGAN_HOME/secrets/hub.key` (mode 0600; `local` generates it when missing). It is never in the
repository, and never written into the warehouse: the raw views call the DuckDB function
`pingan_pseudonym`, registered per connection (build.py for the views, the dbt-duckdb plugin
pingan.warehouse.dbt_pii_plugin for dbt).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

import duckdb

from pingan.core.settings import Settings

HUB_KEY_ENV = "PINGAN_HUB_KEY"
HUB_KEY_FILE_ENV = "PINGAN_HUB_KEY_FILE"  # set for dbt's in-process connections by the build
PREFIX = "ps_"
DIGEST_HEX = 24  # 96 bits: no collision among the hub's people in practice
UDF_NAME = "pingan_pseudonym"
LIST_UDF_NAME = "pingan_pseudonym_list"


_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


class HubKeyError(RuntimeError):
    """No hub key: prod must be given one; the message names where it was looked for."""


def hub_key_path(settings: Settings) -> Path:
    return settings.home / "secrets" / "hub.key"


def load_hub_key(settings: Settings) -> bytes:
    """The hub key from the environment or the key file; `local` creates the file (0600) when missing."""
    return load_secret_key(settings, hub_key_path(settings), HUB_KEY_ENV)


def load_secret_key(settings: Settings, path: Path, env: str) -> bytes:
    """A 32-byte key: `env` (hex) if set, else the key file; only `local` generates a missing file (0600)."""
    if os.environ.get(env):
        return bytes.fromhex(os.environ[env])
    if not path.exists():
        if not settings.generate_keys:
            raise HubKeyError(f"no key: set {env} (hex) or provide {path} (mode 0600)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return read_key_file(path)


def read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise HubKeyError(f"key file {path} has mode {mode:o}; expected 600")
    return bytes.fromhex(path.read_text().strip())


def normalise(value: str) -> str:
    """What two spellings of one identifier share: surrounding spaces, inner spaces and dashes, letter case."""
    return "".join(value.split()).replace("-", "").upper()


_PSEUDONYM = re.compile(rf"{PREFIX}[a-p]{{{DIGEST_HEX}}}")


def is_pseudonym(value: str) -> bool:
    return _PSEUDONYM.fullmatch(value) is not None


def pseudonym(key: bytes, value: str | None) -> str | None:
    """The keyed pseudonym of an identifier; a pseudonym itself is returned unchanged, so raw files whose
    values past retention were replaced by their pseudonyms (pingan.ops.retention_lake) build the same facts."""
    if value is None:
        return None
    if is_pseudonym(value):
        return value
    text = normalise(value)
    if not text:
        return None
    digest = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:DIGEST_HEX]
    return PREFIX + digest.translate(_HEX_TO_LETTERS)


def pseudonym_list(key: bytes, value: str | None, sep: str = ";") -> str | None:
    if value is None:
        return None
    parts = [p for p in (pseudonym(key, v) for v in value.split(sep)) if p]
    return sep.join(parts) if parts else None


def register_pseudonym_functions(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """`pingan_pseudonym(varchar)` and `pingan_pseudonym_list(varchar)` in this connection (idempotent)."""
    for name, fn in ((UDF_NAME, pseudonym), (LIST_UDF_NAME, pseudonym_list)):
        with contextlib.suppress(duckdb.InvalidInputException):  # not registered yet
            con.remove_function(name)
        con.create_function(
            name,
            _bound(fn, key),
            [duckdb.sqltype("VARCHAR")],
            duckdb.sqltype("VARCHAR"),
            null_handling="special",
            side_effects=False,
        )


def _bound(fn, key: bytes):
    """fn with the key bound: DuckDB counts the Python function's parameters, so exactly one."""

    def udf(value: str | None) -> str | None:
        return fn(key, value)

    return udf
