"""Where things live, from the environment: the embedded default keeps everything under ./var.

PINGAN_HOME            root of local state (default ./var)
PINGAN_LAKE_URL        file:///path or s3://bucket/prefix (default file://$PINGAN_HOME/lake)
PINGAN_LANDING_URL     where partners drop files (default file://$PINGAN_HOME/landing)
PINGAN_SHARE_URL       partner shares, their own store apart from lake and warehouse
                       (default file://$PINGAN_HOME/shares; production: s3://<share bucket>)
PINGAN_WAREHOUSE       the published analyst DuckDB file (default $PINGAN_HOME/warehouse.duckdb)
PINGAN_S3_ENDPOINT     host:port of the S3 server (MinIO in production, SeaweedFS in tests)
PINGAN_S3_ACCESS_KEY / PINGAN_S3_SECRET_KEY / PINGAN_S3_SECURE / PINGAN_S3_REGION
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = False
    region: str = "us-east-1"

    def __repr__(self) -> str:  # never print the secret
        return f"S3Settings(endpoint={self.endpoint!r}, access_key={self.access_key!r}, secure={self.secure})"


@dataclass(frozen=True)
class Settings:
    home: Path
    lake_url: str
    landing_url: str
    share_url: str
    warehouse_path: Path
    connectors_dir: Path
    expectations_dir: Path
    agreements_dir: Path
    dbt_dir: Path
    s3: S3Settings | None

    @property
    def sim_dir(self) -> Path:
        return self.home / "sim"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("PINGAN_HOME", "var")).resolve()
    s3 = None
    if env.get("PINGAN_S3_ENDPOINT"):
        s3 = S3Settings(
            endpoint=env["PINGAN_S3_ENDPOINT"],
            access_key=env.get("PINGAN_S3_ACCESS_KEY", ""),
            secret_key=env.get("PINGAN_S3_SECRET_KEY", ""),
            secure=env.get("PINGAN_S3_SECURE", "false").lower() in ("1", "true", "yes"),
            region=env.get("PINGAN_S3_REGION", "us-east-1"),
        )
    return Settings(
        home=home,
        lake_url=env.get("PINGAN_LAKE_URL", f"file://{home / 'lake'}"),
        landing_url=env.get("PINGAN_LANDING_URL", f"file://{home / 'landing'}"),
        share_url=env.get("PINGAN_SHARE_URL", f"file://{home / 'shares'}"),
        # absolute, not resolved: the published path is a symlink to the file a build swapped in
        warehouse_path=Path(env.get("PINGAN_WAREHOUSE", home / "warehouse.duckdb")).absolute(),
        connectors_dir=Path(env.get("PINGAN_CONNECTORS_DIR", PROJECT_ROOT / "connectors")),
        expectations_dir=Path(env.get("PINGAN_EXPECTATIONS_DIR", PROJECT_ROOT / "expectations")),
        agreements_dir=Path(env.get("PINGAN_AGREEMENTS_DIR", PROJECT_ROOT / "agreements")),
        dbt_dir=Path(env.get("PINGAN_DBT_DIR", PROJECT_ROOT / "dbt")),
        s3=s3,
    )
