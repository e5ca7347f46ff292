"""Made-up districts: the federation's source systems replicated under other GB/T 2260 county codes.

Sizing the whole delta needs more than the five real jurisdictions. A replica is one more copy of the five
districts' systems (same formats, transports and defects, another seed), each district under a real county
code of Shanghai, Jiangsu, Zhejiang or Anhui that is not one of the five; the data stays synthetic. A
replica gets its own feed specs (`<feed>_r<i>`, written beside copies of the real ones), its own simulated
files under its own home, and its own simulated REST/HTTP servers, so loading it exercises the same
loader and quality gate as the real feeds. Replica 0 is the real federation.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from pingan.core.environment import temporary_env

REAL_CODES = ("310118", "320509", "330421", "330482", "310116")
DELTA_PROVINCES = ("31", "32", "33", "34")  # Shanghai, Jiangsu, Zhejiang, Anhui
URL_ENVS = ("url_env", "base_url_env", "token_env")


def made_up_codes(count: int) -> list[str]:
    """County-level GB/T 2260 codes of the delta's provinces, other than the five, in a fixed order."""
    from gb2260.data import data

    current = data[None]  # the package's current division list
    codes = sorted(
        str(c)
        for c in current
        if str(c)[:2] in DELTA_PROVINCES and str(c)[4:] not in ("00", "01") and str(c) not in REAL_CODES
    )
    if count > len(codes):
        raise ValueError(f"only {len(codes)} county codes in the delta's provinces; asked for {count}")
    return codes[:count]


@dataclass(frozen=True)
class Replica:
    index: int  # 1, 2, ...: replica 0 is the real federation
    home: Path  # its simulated sources: sim/ and landing/
    codes: dict[str, str]  # real jurisdiction code -> this replica's made-up code

    def feed(self, feed: str) -> str:
        return f"{feed}_r{self.index}"

    def env(self, name: str) -> str:
        return f"{name}_R{self.index}"


def replicas(count: int, root: Path) -> list[Replica]:
    """`count` replicas of the five districts (5 x count made-up districts), homes under `root`."""
    codes = made_up_codes(len(REAL_CODES) * count)
    return [
        Replica(i, root / f"replica-{i}", dict(zip(REAL_CODES, codes[(i - 1) * 5 : i * 5], strict=True)))
        for i in range(1, count + 1)
    ]


def write_specs(replica: Replica, real_connectors: Path, connectors: Path, landing_root: Path) -> list[str]:
    """The replica's feed specs under `connectors` (beside the real ones); returns its feed ids.

    The replica's files are under `landing_root` (the deployment's landing folder): its file feeds'
    paths get the replica's folder in front."""
    shutil.copyfile(real_connectors / "_defaults.yaml", connectors / "_defaults.yaml")
    feeds = []
    for path in sorted(real_connectors.rglob("*.yaml")):
        if path.name.startswith("_"):
            continue
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec["feed"] = replica.feed(spec["feed"])
        spec["jurisdiction_code"] = replica.codes[spec["jurisdiction_code"]]
        spec["description"] = (
            f"made-up district {spec['jurisdiction_code']} (replica {replica.index}): "
            + spec.get("description", "")
        )
        transport = spec["transport"]
        if transport["kind"] in ("file_drop", "s3_landing"):
            transport["path"] = (
                f"{(replica.home / 'sim').relative_to(landing_root).as_posix()}/{transport['path']}"
            )
        for key in URL_ENVS:
            if key in transport:
                transport[key] = replica.env(transport[key])
        target = connectors / path.relative_to(real_connectors).parent / f"{path.stem}_r{replica.index}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
        feeds.append(spec["feed"])
    return feeds


def simulate_replica(
    replica: Replica,
    start: date,
    end: date,
    *,
    seed: int = 42,
    scale: float = 1.0,
    defect_rate: float = 0.01,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """The replica's source files for [start, end], from its own seed (rows differ from the real ones)."""
    from pingan.core.storage import open_store
    from pingan_sim import simulate

    landing = open_store(f"file://{replica.home / 'sim'}")  # like the local deployment: one landing root
    landing.ensure()
    return simulate(
        replica.home, landing, start, end, seed=seed + 7919 * replica.index, scale=scale,
        defect_rate=defect_rate, progress=progress,
    )  # fmt: skip


@contextmanager
def replica_sources(reps: list[Replica]) -> Iterator[None]:
    """Each replica's simulated REST/HTTP servers on loopback, their URLs and token in its feeds' env vars."""
    from pingan_sim import registry
    from pingan_sim.local_sources import FIRE_TOKEN, FIRE_URL, JOINT_OPS_URL, TAX_DB_URL
    from pingan_sim.servers import SourceServers

    with ExitStack() as stack:
        env = {}
        for rep in reps:
            token = secrets.token_urlsafe(24)
            servers = stack.enter_context(SourceServers(rep.home, token))
            env[rep.env(FIRE_URL)] = servers.fire_url
            env[rep.env(FIRE_TOKEN)] = token
            env[rep.env(JOINT_OPS_URL)] = servers.joint_ops_url
            env[rep.env(TAX_DB_URL)] = f"sqlite:///{rep.home / registry.FILE}"
        stack.enter_context(temporary_env(**env))
        yield
