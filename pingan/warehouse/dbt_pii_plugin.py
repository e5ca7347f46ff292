"""dbt-duckdb plugin: registers the hub's pseudonym functions on every connection dbt opens.

The raw views call `pingan_pseudonym` / `pingan_pseudonym_list` (pingan.core.pseudonym); dbt-duckdb runs
in the build's process, so its connections get the same Python functions. The key comes from
`PINGAN_HUB_KEY` or the key file named by `PINGAN_HUB_KEY_FILE` (set by pingan.warehouse.build).
"""

from __future__ import annotations

import os
from pathlib import Path

from dbt.adapters.duckdb.plugins import BasePlugin

from pingan.core.pseudonym import (
    HUB_KEY_ENV,
    HUB_KEY_FILE_ENV,
    HubKeyError,
    read_key_file,
    register_pseudonym_functions,
)


def _key() -> bytes:
    if os.environ.get(HUB_KEY_ENV):
        return bytes.fromhex(os.environ[HUB_KEY_ENV])
    path = os.environ.get(HUB_KEY_FILE_ENV)
    if not path:
        raise HubKeyError(f"dbt needs the hub key: neither {HUB_KEY_ENV} nor {HUB_KEY_FILE_ENV} is set")
    return read_key_file(Path(path))


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        self._hub_key = _key()

    def configure_connection(self, conn) -> None:
        register_pseudonym_functions(conn, self._hub_key)
