"""The simulated sources as the `local` deployment's feed endpoints (entry point `pingan.local_sources`).

pingan.core.deployment asks for the endpoint variables a run needs and finds unset; this answers with the
simulator's SQLite tax registry and, only when an HTTP feed is among them, the fire brigade API and the
Pinghu–Jinshan platform served on loopback for the duration of the run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from pingan.core.settings import Settings
from pingan_sim import registry
from pingan_sim.servers import SourceServers

TAX_DB_URL = "PINGAN_QINGPU_TAX_DB_URL"
FIRE_URL = "PINGAN_QINGPU_FIRE_URL"
FIRE_TOKEN = "PINGAN_QINGPU_FIRE_TOKEN"
JOINT_OPS_URL = "PINGAN_PINGHU_JINSHAN_URL"
SERVED = (FIRE_URL, FIRE_TOKEN, JOINT_OPS_URL)


@contextmanager
def simulated_sources(settings: Settings, variables: list[str]) -> Iterator[dict[str, str]]:
    """Values for those of `variables` the simulator provides; servers run until the block ends."""
    values = {}
    if TAX_DB_URL in variables:
        values[TAX_DB_URL] = f"sqlite:///{settings.home / registry.FILE}"
    if not set(SERVED) & set(variables):
        yield values
        return
    token = os.environ.get(FIRE_TOKEN) or secrets.token_urlsafe(24)
    with SourceServers(settings.home, token) as servers:
        served = {FIRE_URL: servers.fire_url, FIRE_TOKEN: token, JOINT_OPS_URL: servers.joint_ops_url}
        values.update({k: v for k, v in served.items() if k in variables})
        yield values
