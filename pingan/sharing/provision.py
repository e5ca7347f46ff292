"""`pingan partners provision`: turn the agreements into each partner's access to the share store.

For every agreement in force (on the real date) the partner gets an S3 identity that may read and list
`share/<partner>/` of the share store and nothing else (no other partner, no audit log, no lake, no
warehouse, no writes); an agreement that ended loses it. Two back ends express the same grant:
- `minio` (production): a MinIO user and an IAM policy (`s3:GetObject` on the prefix, `s3:ListBucket`
  with an `s3:prefix` condition), applied with the MinIO SDK's admin client (`minio.MinioAdmin`);
- `seaweedfs` (tests, small set-ups): the identities of SeaweedFS's `s3.json` (`Read:`/`List:` actions on
  the prefix), rewritten keeping the identities that are not partners'; SeaweedFS reads it at start.
Provisioning also writes each partner's profiles under $PINGAN_HOME/partners/<partner>/ (mode 0600): the
pull profile for `pingan partner pull` and the Delta Sharing profile for the share server. Every grant
and removal is appended to the audit log.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from pingan.core import audit
from pingan.core.canonical import local_today
from pingan.core.settings import Settings
from pingan.core.storage import Store
from pingan.sharing.agreements import Agreement, load_agreements
from pingan.sharing.keys import public_key_id, public_key_pem, signing_key
from pingan.sharing.recipients import S3Credentials, bearer_token, recipient_key, s3_credentials

log = logging.getLogger(__name__)

Backend = Literal["minio", "seaweedfs", "none"]
PARTNER_IDENTITY_PREFIX = "pingan-share-"
DEFAULT_SHARE_SERVER_URL = "http://127.0.0.1:8090/delta-sharing"


@dataclass
class ProvisionResult:
    granted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    profiles: dict[str, Path] = field(default_factory=dict)


def object_prefix(shares: Store, partner: str) -> str:
    """The partner's prefix as the object store sees it (bucket-relative, with the store's own prefix)."""
    return f"{shares.prefix}/share/{partner}/" if shares.prefix else f"share/{partner}/"


def minio_policy(shares: Store, partner: str) -> dict:
    prefix = object_prefix(shares, partner)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{shares.bucket}/{prefix}*"],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{shares.bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
        ],
    }


def seaweedfs_identity(shares: Store, partner: str, credentials: S3Credentials) -> dict:
    resource = f"{shares.bucket}/{object_prefix(shares, partner)}*"
    return {
        "name": credentials.access_key,
        "credentials": [{"accessKey": credentials.access_key, "secretKey": credentials.secret_key}],
        "actions": [f"Read:{resource}", f"List:{resource}"],
    }


def provision(
    settings: Settings,
    shares: Store,
    *,
    backend: Backend,
    s3_config: Path | None = None,
    share_server_url: str | None = None,
    today: date | None = None,
    agreements_dir: Path | None = None,
) -> ProvisionResult:
    today = today or local_today()
    agreements = load_agreements(agreements_dir or settings.agreements_dir)
    in_force = {p: a for p, a in agreements.items() if a.is_in_force(today)}
    ended = {p: a for p, a in agreements.items() if p not in in_force}
    allow_generate = shares.scheme == "file" or backend == "seaweedfs"
    key = recipient_key(settings.home / "secrets", allow_generate=allow_generate)
    credentials = {p: s3_credentials(key, a) for p, a in in_force.items()}

    if backend == "seaweedfs":
        if s3_config is None:
            raise ValueError("the seaweedfs back end needs --s3-config (the s3.json SeaweedFS starts with)")
        result = _provision_seaweedfs(shares, s3_config, credentials, set(ended))
    elif backend == "minio":
        result = _provision_minio(settings, shares, credentials, ended, key)
    else:
        result = ProvisionResult()
    for partner in result.granted:
        audit.append(shares, "access_granted", partner=partner, backend=backend,
                     access_key=credentials[partner].access_key,
                     agreement_version=in_force[partner].version)  # fmt: skip
    for partner in result.removed:
        audit.append(shares, "access_removed", partner=partner, backend=backend,
                     reason=agreements[partner].ended_why(today))  # fmt: skip

    url = share_server_url or os.environ.get("PINGAN_SHARE_SERVER_URL", DEFAULT_SHARE_SERVER_URL)
    signer = signing_key(settings.home / "secrets", allow_generate=shares.scheme == "file")
    for partner, agreement in in_force.items():
        result.profiles[partner] = write_profiles(
            settings.home / "partners" / partner, shares, agreement, credentials[partner],
            bearer_token(key, agreement), url, signer.public_key(),
        )  # fmt: skip
    for partner in ended:
        for name in ("pull-profile.json", f"{partner}.share"):
            (settings.home / "partners" / partner / name).unlink(missing_ok=True)
    return result


def _provision_seaweedfs(
    shares: Store, s3_config: Path, credentials: dict[str, S3Credentials], ended: set[str]
) -> ProvisionResult:
    config = json.loads(s3_config.read_text()) if s3_config.exists() else {"identities": []}
    before = {i["name"]: i for i in config.get("identities", [])}
    keep = [i for i in before.values() if not i["name"].startswith(PARTNER_IDENTITY_PREFIX)]
    partners = [seaweedfs_identity(shares, p, c) for p, c in sorted(credentials.items())]
    config["identities"] = keep + partners
    _write_private(s3_config, json.dumps(config, indent=2))
    after = {i["name"] for i in partners}
    result = ProvisionResult()
    result.granted = [p for p, c in sorted(credentials.items()) if before.get(c.access_key) != next(
        i for i in partners if i["name"] == c.access_key)]  # fmt: skip
    result.removed = sorted(
        p
        for p in ended
        if f"{PARTNER_IDENTITY_PREFIX}{p}" in before and f"{PARTNER_IDENTITY_PREFIX}{p}" not in after
    )
    log.info("wrote %d partner identities to %s (restart SeaweedFS to apply)", len(partners), s3_config)
    return result


def _provision_minio(
    settings, shares: Store, credentials, ended: dict[str, Agreement], key
) -> ProvisionResult:
    """Users and policies through MinIO's admin API (the hub's credentials must be a MinIO admin)."""
    from minio.credentials import StaticProvider
    from minio.error import MinioAdminException
    from minio.minioadmin import MinioAdmin

    if shares.scheme != "s3":
        raise ValueError("the minio back end needs an s3:// share store (PINGAN_SHARE_URL)")
    s3 = settings.s3
    admin = MinioAdmin(endpoint=s3.endpoint, credentials=StaticProvider(s3.access_key, s3.secret_key),
                       secure=s3.secure, region=s3.region)  # fmt: skip
    result = ProvisionResult()
    for partner, creds in sorted(credentials.items()):
        policy = f"pingan-share-{partner}"
        admin.policy_add(policy, policy=minio_policy(shares, partner))
        admin.user_add(creds.access_key, creds.secret_key)
        try:
            admin.attach_policy([policy], user=creds.access_key)
        except MinioAdminException as exc:  # already attached: provisioning is idempotent
            if "already" not in str(exc).lower():
                raise
        result.granted.append(partner)
    for partner in sorted(ended):
        for remove, name in ((admin.user_remove, f"{PARTNER_IDENTITY_PREFIX}{partner}"),
                             (admin.policy_remove, f"pingan-share-{partner}")):  # fmt: skip
            try:
                remove(name)
            except MinioAdminException as exc:
                if "not" not in str(exc).lower():  # already gone
                    raise
        result.removed.append(partner)
    return result


def write_profiles(
    directory: Path,
    shares: Store,
    agreement: Agreement,
    creds: S3Credentials,
    token: str,
    url: str,
    public_key,
) -> Path:
    """The partner's pull profile (object store, credentials, trusted hub keys) and Delta Sharing profile."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    trusted = {public_key_id(public_key): public_key_pem(public_key).decode("ascii")}
    for key in shares.list(f"share/{agreement.partner}/keys/"):  # keys the hub signed with before a rotation
        trusted.setdefault(key.rsplit("/", 1)[-1].split(".", 1)[0], shares.get_bytes(key).decode("ascii"))
    pull = {
        "format": "pingan.partner-profile/1",
        "partner": agreement.partner,
        "share_url": shares.url,
        "datasets": sorted(agreement.datasets),
        "trusted_keys": trusted,
    }
    if shares.scheme == "s3":
        s3 = shares.s3
        pull["s3"] = {"endpoint": s3.endpoint, "secure": s3.secure, "region": s3.region,
                      "access_key": creds.access_key, "secret_key": creds.secret_key}  # fmt: skip
    path = directory / "pull-profile.json"
    _write_private(path, json.dumps(pull, indent=2, ensure_ascii=False))
    sharing = {"shareCredentialsVersion": 1, "endpoint": url.rstrip("/"), "bearerToken": token}
    _write_private(directory / f"{agreement.partner}.share", json.dumps(sharing, indent=2))
    return path


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)
