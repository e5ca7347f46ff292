"""The deployment, chosen once: `PINGAN_DEPLOYMENT=local` (the embedded default) or `prod`.

Read from the environment with pydantic-settings (prefix `PINGAN_`):

PINGAN_DEPLOYMENT      local | prod (default local)
PINGAN_HOME            root of local state (default ./var)
PINGAN_LAKE_URL        file:///path or s3://bucket/prefix (local default file://$PINGAN_HOME/lake)
PINGAN_LANDING_URL     the landing root the feed specs' paths are relative to (local default: the simulated
                       sources' drop folder file://$PINGAN_HOME/sim)
PINGAN_SHARE_URL       partner shares, their own store apart from lake and warehouse
                       (local default file://$PINGAN_HOME/shares; production: s3://<share bucket>)
PINGAN_WAREHOUSE       the published analyst DuckDB file (default $PINGAN_HOME/warehouse.duckdb)
PINGAN_DBT_TARGET      profiles.yml target (default: `local` for a lake on disk, `s3` otherwise)
PINGAN_SUPERSEDED_RETENTION_MINUTES  how long a batch a rerun replaced stays readable for builds that
                       listed it before the rerun (default 60; running builds also hold leases on theirs)
PINGAN_S3_ENDPOINT     host:port of the S3 server (MinIO in production, SeaweedFS in tests)
PINGAN_S3_ACCESS_KEY / PINGAN_S3_SECRET_KEY / PINGAN_S3_SECURE / PINGAN_S3_REGION
PINGAN_SPARK_MASTER    the Spark cluster `pingan build --engine spark` runs on (default local[2], a session in
                       this process; a standalone cluster is spark://host:7077)

`local` fills what is unset with the defaults above, generates share keys under $PINGAN_HOME/secrets and
lets the simulator (pingan_sim, when installed) stand in for the feeds' sources. `prod` has no defaults
for stores, never generates a key and never starts a simulator: pingan.core.deployment.check_deployment lists
every variable it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DeploymentKind = Literal["local", "prod"]


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = False
    region: str = "us-east-1"

    def __repr__(self) -> str:  # never print the secret
        return f"S3Settings(endpoint={self.endpoint!r}, access_key={self.access_key!r}, secure={self.secure})"


class EnvSettings(BaseSettings):
    """The raw environment, typed; `load_settings` turns it into a deployment's Settings."""

    model_config = SettingsConfigDict(env_prefix="PINGAN_", extra="ignore", case_sensitive=False)

    deployment: DeploymentKind = "local"
    home: Path = Path("var")
    lake_url: str | None = None
    landing_url: str | None = None
    share_url: str | None = None
    warehouse: Path | None = None
    dbt_target: str | None = None
    connectors_dir: Path = PROJECT_ROOT / "connectors"
    expectations_dir: Path = PROJECT_ROOT / "expectations"
    agreements_dir: Path = PROJECT_ROOT / "agreements"
    dbt_dir: Path = PROJECT_ROOT / "dbt"
    s3_endpoint: str | None = None
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    superseded_retention_minutes: float = 60
    spark_master: str = "local[2]"


@dataclass(frozen=True)
class Settings:
    home: Path
    lake_url: str
    landing_url: str
    warehouse_path: Path
    connectors_dir: Path
    expectations_dir: Path
    agreements_dir: Path
    dbt_dir: Path
    s3: S3Settings | None
    deployment: DeploymentKind = "local"
    share_url: str = ""
    dbt_target: str = "local"
    superseded_retention: timedelta = timedelta(minutes=60)
    spark_master: str = "local[2]"

    @property
    def sim_dir(self) -> Path:
        """Where the simulator keeps its sources (local deployment only)."""
        return self.home / "sim"

    @property
    def generate_keys(self) -> bool:
        """Key policy: only the embedded default creates missing share keys; prod must be given them."""
        return self.deployment == "local"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """The deployment's settings from the environment (or `env`); unset values are empty in prod."""
    raw = EnvSettings() if env is None else _ExplicitEnv(**_from_mapping(env))
    home = raw.home.resolve()
    local = raw.deployment == "local"
    s3 = None
    if raw.s3_endpoint:
        s3 = S3Settings(raw.s3_endpoint, raw.s3_access_key, raw.s3_secret_key, raw.s3_secure, raw.s3_region)
    lake_url = raw.lake_url or (f"file://{home / 'lake'}" if local else "")
    warehouse = raw.warehouse or (home / "warehouse.duckdb")
    return Settings(
        home=home,
        lake_url=lake_url,
        landing_url=raw.landing_url or (f"file://{home / 'sim'}" if local else ""),
        # absolute, not resolved: the published path is a symlink to the file a build swapped in
        warehouse_path=Path(warehouse).absolute(),
        connectors_dir=raw.connectors_dir,
        expectations_dir=raw.expectations_dir,
        agreements_dir=raw.agreements_dir,
        dbt_dir=raw.dbt_dir,
        s3=s3,
        deployment=raw.deployment,
        share_url=raw.share_url or (f"file://{home / 'shares'}" if local else ""),
        dbt_target=raw.dbt_target or ("local" if lake_url.startswith("file://") else "s3"),
        superseded_retention=timedelta(minutes=raw.superseded_retention_minutes),
        spark_master=raw.spark_master,
    )


class _ExplicitEnv(EnvSettings):
    """Reads only the values passed in, never the process environment."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):
        return (init_settings,)


def _from_mapping(env: dict[str, str]) -> dict[str, str]:
    """An explicit mapping of PINGAN_* variables as keyword arguments (ignores the process environment)."""
    fields = EnvSettings.model_fields
    out = {}
    for key, value in env.items():
        name = key.lower().removeprefix("pingan_")
        if key.upper().startswith("PINGAN_") and name in fields:
            out[name] = value
    return out
