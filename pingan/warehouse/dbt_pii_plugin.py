"""dbt-duckdb plugin: registers the hub's pseudonym functions on every connection dbt opens.

The raw views call `pingan_pseudonym` / `pingan_pseudonym_list` (pingan.core.pseudonym); dbt-duckdb runs
in the build's process, so its connections get the same Python functions. The key comes from
`PINGAN_HUB_KEY` or the key file named by `PINGAN_HUB_KEY_FILE` (set by pingan.warehouse.build).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dbt.adapters.duckdb.plugins import BasePlugin

from pingan.core.pseudonym import (
    HUB_KEY_ENV,
    HUB_KEY_FILE_ENV,
    read_key_file,
    register_pseudonym_functions,
)

log = logging.getLogger(__name__)


def _key() -> bytes | None:
    if os.environ.get(HUB_KEY_ENV):
        return bytes.fromhex(os.environ[HUB_KEY_ENV])
    path = os.environ.get(HUB_KEY_FILE_ENV)
    return read_key_file(Path(path)) if path else None


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        self._hub_key = _key()

    def configure_connection(self, conn) -> None:
        # dbt outside a build (sqlfluff's templater, `dbt parse`) has no key and reads no raw view; a build
        # always has one, and a raw view read without it fails naming pingan_pseudonym
        if self._hub_key is None:
            log.debug(
                "no hub key (%s / %s): pseudonym functions not registered", HUB_KEY_ENV, HUB_KEY_FILE_ENV
            )
            return
        register_pseudonym_functions(conn, self._hub_key)
