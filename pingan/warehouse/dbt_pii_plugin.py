"""dbt-duckdb plugin: registers the hub's pseudonym functions and the raw-zone key on every dbt connection.

The raw views call `pingan_pseudonym` / `pingan_pseudonym_list` (pingan.core.pseudonym); dbt-duckdb runs
in the build's process, so its connections get the same Python functions. The key comes from
`PINGAN_HUB_KEY` or the key file named by `PINGAN_HUB_KEY_FILE` (set by pingan.warehouse.build). The raw
views read encrypted raw files: the lake key comes from `PINGAN_LAKE_KEY` or the file named by
`PINGAN_LAKE_KEY_FILE`, and the connection gets the raw-zone key derived from it (pingan.core.lake_crypto),
in memory only: nothing of it is in profiles.yml, dbt's logs or the warehouse.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dbt.adapters.duckdb.plugins import BasePlugin

from pingan.core.lake_crypto import LAKE_KEY_ENV, LAKE_KEY_FILE_ENV, LakeCrypto
from pingan.core.pseudonym import (
    HUB_KEY_ENV,
    HUB_KEY_FILE_ENV,
    read_key_file,
    register_pseudonym_functions,
)

log = logging.getLogger(__name__)


def _key(env: str = HUB_KEY_ENV, file_env: str = HUB_KEY_FILE_ENV) -> bytes | None:
    if os.environ.get(env):
        return bytes.fromhex(os.environ[env])
    path = os.environ.get(file_env)
    return read_key_file(Path(path)) if path and Path(path).exists() else None


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        self._hub_key = _key()
        lake_key = _key(LAKE_KEY_ENV, LAKE_KEY_FILE_ENV)
        self._lake = LakeCrypto(lake_key) if lake_key else None

    def configure_connection(self, conn) -> None:
        if self._lake is not None:  # without it, a raw view over encrypted files fails naming the file
            self._lake.add_duckdb_key(conn)
        # dbt outside a build (sqlfluff's templater, `dbt parse`) has no key and reads no raw view; a build
        # always has one, and a raw view read without it fails naming pingan_pseudonym
        if self._hub_key is None:
            log.debug(
                "no hub key (%s / %s): pseudonym functions not registered", HUB_KEY_ENV, HUB_KEY_FILE_ENV
            )
            return
        register_pseudonym_functions(conn, self._hub_key)
