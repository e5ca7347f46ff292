"""What a deployment must supply, checked at start-up, and each feed's source endpoint for a run.

A feed spec names its endpoint and credentials by environment variable (`base_url_env`, `token_env`,
`url_env`), never by value. `prod` must have every one of them set, with the stores and the share keys;
`check_deployment` lists all that are missing in one error. `local` may leave them unset: an installed
local-source provider (the simulator, entry point group `pingan.local_sources`) stands in for them.
Nothing here imports the simulator; it is found only through that entry point.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points

from pingan.core.environment import temporary_env
from pingan.core.feed_spec import FeedSpec, load_spec_set
from pingan.core.settings import Settings

LOCAL_SOURCES_GROUP = "pingan.local_sources"
STORE_VARIABLES = ("PINGAN_LAKE_URL", "PINGAN_LANDING_URL", "PINGAN_SHARE_URL", "PINGAN_WAREHOUSE")
S3_VARIABLES = ("PINGAN_S3_ENDPOINT", "PINGAN_S3_ACCESS_KEY", "PINGAN_S3_SECRET_KEY")
SIGNING_KEY_VARIABLE = "PINGAN_SHARE_SIGNING_KEY"
# the hub's pseudonym key, the restricted store's and the lake's encryption keys: generated only in local
PRIVACY_KEY_VARIABLES = ("PINGAN_HUB_KEY", "PINGAN_RESTRICTED_KEY", "PINGAN_LAKE_KEY")
SHARE_KEY_VARIABLE = "PINGAN_SHARE_KEY_{partner}"


class DeploymentError(RuntimeError):
    """The deployment lacks configuration; the message lists every missing variable."""


def feed_variables(spec: FeedSpec) -> list[str]:
    """The environment variables a feed's transport reads its endpoint and credentials from."""
    t = spec.transport
    names = [getattr(t, attr, None) for attr in ("base_url_env", "token_env", "url_env")]
    return [n for n in names if n]


def partners(settings: Settings) -> list[str]:
    """Partner names of the agreements (file stems: agreements.py checks they match `partner:`)."""
    return sorted(p.stem for p in settings.agreements_dir.glob("*.yaml"))


def required_variables(settings: Settings) -> list[str]:
    """Every variable the prod deployment needs: stores, S3 credentials, share keys, feed endpoints."""
    names = list(STORE_VARIABLES) + list(S3_VARIABLES) + [SIGNING_KEY_VARIABLE, *PRIVACY_KEY_VARIABLES]
    names += [SHARE_KEY_VARIABLE.format(partner=p.upper()) for p in partners(settings)]
    for spec in load_spec_set(settings.connectors_dir).specs.values():  # a broken file fails its own feed
        names += feed_variables(spec)
    return list(dict.fromkeys(names))


def check_deployment(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """Fail at start-up in prod, listing every unset variable at once; local has defaults for all."""
    if settings.deployment != "prod":
        return
    env = os.environ if env is None else env
    missing = [n for n in required_variables(settings) if not env.get(n)]
    if missing:
        raise DeploymentError(f"PINGAN_DEPLOYMENT=prod: unset: {', '.join(missing)} (see .env.example)")


def _local_source_provider():
    found = entry_points(group=LOCAL_SOURCES_GROUP)
    return next(iter(found)).load() if found else None


@contextmanager
def feed_sources(settings: Settings, specs: list[FeedSpec]) -> Iterator[None]:
    """Make every selected feed's endpoint variables available for the block, or fail naming them.

    prod: they must already be set; nothing is started. local: what is unset comes from the local
    source provider (the simulator's servers and files), started only when a feed needs it.
    """
    wanted = list(dict.fromkeys(v for s in specs for v in feed_variables(s)))
    unset = [v for v in wanted if not os.environ.get(v)]
    provider = _local_source_provider() if unset and settings.deployment == "local" else None
    if provider is None:
        _fail_if_unset(settings, specs, unset)
        yield
        return
    with provider(settings, unset) as values, temporary_env(**values):
        _fail_if_unset(settings, specs, [v for v in unset if not os.environ.get(v)])
        yield


def _fail_if_unset(settings: Settings, specs: list[FeedSpec], unset: list[str]) -> None:
    if not unset:
        return
    feeds = sorted(s.feed for s in specs if set(feed_variables(s)) & set(unset))
    hint = "" if settings.deployment == "prod" else " (or install the simulator: pip install -e ./sim)"
    raise DeploymentError(f"feeds {', '.join(feeds)}: unset: {', '.join(unset)}{hint}")
