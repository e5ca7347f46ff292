"""Publish partner shares from the published warehouse, as immutable, signed, pseudonymised snapshots.

For each partner whose agreement is in force on `as_of`, and each dataset it grants:
1. read the granted rows and columns from the warehouse (read-only: analysts and builds are unaffected),
   leaving out rows after `as_of` so a rerun or backfill of a past date shares the same rows;
2. pseudonymise and coarsen columns as the agreement says, then run the PII guard. Every share of the run
   is prepared and guarded before anything is written, so a blocked share leaves no trace;
3. write `share/<partner>/<dataset>/<snapshot_id>/part-0.parquet`, then `manifest.json`, then
   `manifest.sig`, and only then move `share/<partner>/<dataset>/latest.json`: a reader following the
   pointer only ever finds complete snapshots;
4. append an entry to the audit log `audit/publications/<day>/<...>.json` (one object per entry, so
   local disk and S3 behave alike; `read_json('audit/publications/**/*.json')` reads it as one table).

The snapshot id is the as-of date plus a hash of the content, the grant and the pseudonym key: a rerun
finds the snapshot complete and writes nothing. `latest` never moves back to an older as-of date.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pingan.canonical import TZ
from pingan.feed_spec import load_specs
from pingan.settings import Settings
from pingan.sharing import manifest as mf
from pingan.sharing.agreements import Agreement, AnyOf, Condition, DatasetGrant, load_agreements
from pingan.sharing.keys import key_id, public_key_id, public_key_pem, share_key, signing_key
from pingan.sharing.pii_guard import Finding, PiiGuardError
from pingan.sharing.pii_guard import scan as pii_scan
from pingan.sharing.pseudonymise import coarsen_location, pseudonymise_column
from pingan.storage import PARQUET_OPTIONS, Store

log = logging.getLogger(__name__)

DATA_FILE = "part-0.parquet"
WAREHOUSE_SCHEMA = "main"
PUBLIC_KEY_FILE = "signing_key.pub.pem"


class ShareError(RuntimeError):
    """A share that cannot be built from its agreement (missing table or column, unknown partner)."""


@dataclass(frozen=True)
class PublishedShare:
    partner: str
    dataset: str
    snapshot_id: str
    path: str  # URI of the snapshot folder
    rows: int
    created: bool  # False when a rerun found this snapshot already published


@dataclass(frozen=True)
class _Prepared:
    agreement: Agreement
    dataset: str
    grant: DatasetGrant
    table: pa.Table
    batch_ids: list[str]
    pseudonym_key_id: str
    findings: list[Finding]  # of the PII guard; any finding blocks the whole run


def publish(
    settings: Settings,
    lake: Store,
    *,
    partners: list[str] | None = None,
    as_of: date,
    agreements_dir: Path | None = None,
) -> list[PublishedShare]:
    agreements = load_agreements(agreements_dir or settings.agreements_dir)
    unknown = sorted(set(partners or []) - set(agreements))
    if unknown:
        raise ShareError(f"no agreement for partner(s) {unknown}; known: {', '.join(sorted(agreements))}")
    selected = [agreements[p] for p in sorted(partners or agreements)]
    in_force = []
    for agreement in selected:
        if agreement.is_expired(as_of):
            log.warning(
                "agreement %s v%d expired on %s: nothing published",
                agreement.partner,
                agreement.version,
                agreement.expires_on,
            )
            _audit(
                lake,
                {
                    "event": "skipped_expired",
                    "partner": agreement.partner,
                    "agreement_version": agreement.version,
                    "as_of": as_of.isoformat(),
                    "expires_on": agreement.expires_on.isoformat(),
                },
            )
        else:
            in_force.append(agreement)
    if not in_force:
        return []
    if not settings.warehouse_path.exists():
        raise ShareError(f"no published warehouse at {settings.warehouse_path}: run the build first")

    # Keys are generated only in the local deployment; prod must be given them (pingan.settings).
    secrets_dir, allow_generate = settings.home / "secrets", settings.generate_keys
    signer = signing_key(secrets_dir, allow_generate=allow_generate)
    pii_columns = {c for spec in load_specs(settings.connectors_dir).values() for c in spec.pii_columns}
    prepared: list[_Prepared] = []
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.execute(f"SET TimeZone = '{TZ}'")
        for agreement in in_force:
            key = share_key(agreement.partner, secrets_dir, allow_generate=allow_generate)
            for name, grant in agreement.datasets.items():
                prepared.append(_prepare(con, agreement, name, grant, key, as_of, pii_columns))
    blocked = [f.describe(p.agreement.partner, p.dataset) for p in prepared for f in p.findings]
    if blocked:
        raise PiiGuardError("PII guard blocked the publication, nothing was written: " + "; ".join(blocked))
    return [_write(lake, p, as_of, signer) for p in prepared]


# --- building a share -----------------------------------------------------------------------------------
def _prepare(
    con, agreement: Agreement, name: str, grant: DatasetGrant, key: bytes, as_of: date, pii_columns: set[str]
) -> _Prepared:
    label = f"partner {agreement.partner}, dataset {name} ({agreement.path})"
    try:
        table, batch_ids = _read_rows(con, grant, as_of)
        table = _treat(table, grant, key)
    except ValueError as exc:
        raise ShareError(f"{label}: {exc}") from None
    pseudonymised = set(grant.columns_treated("pseudonymise"))
    findings = pii_scan(table, pii_columns=pii_columns, pseudonymised=pseudonymised)
    return _Prepared(agreement, name, grant, table, batch_ids, key_id(key), findings)


def _read_rows(con, grant: DatasetGrant, as_of: date) -> tuple[pa.Table, list[str]]:
    """The granted rows and columns, in a stable order, and the raw-zone batches they came from."""
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [WAREHOUSE_SCHEMA, grant.source],
        ).fetchall()
    )
    if not types:
        raise ValueError(f"source table {grant.source!r} is not in the warehouse")
    needed = set(grant.columns) | {c.column for c in _conditions(grant)} | ({grant.as_of_column} - {None})
    missing = sorted(needed - set(types))
    if missing:
        raise ValueError(f"{grant.source} has no column(s) {missing}")

    predicate, params = _predicate(grant, types, as_of)
    source = f"{WAREHOUSE_SCHEMA}.{_ident(grant.source)}"
    select = ", ".join(_ident(c) for c in grant.shared_columns)
    # ORDER BY ALL: the same rows always give the same bytes, hence the same snapshot id
    table = con.execute(
        f"SELECT {select} FROM {source} WHERE {predicate} ORDER BY ALL", params
    ).to_arrow_table()
    batch_ids = []
    if "batch_id" in types:
        sql = f"SELECT DISTINCT batch_id FROM {source} WHERE {predicate} AND batch_id IS NOT NULL ORDER BY 1"
        batch_ids = [r[0] for r in con.execute(sql, params).fetchall()]
    return table, batch_ids


def _treat(table: pa.Table, grant: DatasetGrant, key: bytes) -> pa.Table:
    for column in grant.columns_treated("pseudonymise"):
        index = table.schema.get_field_index(column)
        table = table.set_column(index, column, pseudonymise_column(key, table[column]))
    for column in grant.columns_treated("coarsen_location"):
        try:
            coarse = coarsen_location(table[column])
        except TypeError as exc:
            raise ValueError(f"column {column}: {exc}") from None
        table = table.set_column(table.schema.get_field_index(column), column, coarse)
    return table


def _conditions(grant: DatasetGrant) -> list[Condition]:
    out: list[Condition] = []
    for item in grant.row_filter:
        out.extend(item.any_of if isinstance(item, AnyOf) else [item])
    return out


def _predicate(grant: DatasetGrant, types: dict[str, str], as_of: date) -> tuple[str, list]:
    clauses, params = ["true"], []

    def condition(c: Condition) -> str:
        if c.in_ is not None:
            params.extend(c.in_)
            return f"{_ident(c.column)} IN ({', '.join('?' * len(c.in_))})"
        params.append(c.equals)
        return f"{_ident(c.column)} = ?"

    for item in grant.row_filter:
        if isinstance(item, AnyOf):
            clauses.append("(" + " OR ".join(condition(c) for c in item.any_of) + ")")
        else:
            clauses.append(condition(item))
    if grant.as_of_column:
        column, kind = _ident(grant.as_of_column), types[grant.as_of_column]
        if kind == "DATE":
            clauses.append(f"{column} <= ?")
            params.append(as_of)
        elif kind.startswith("TIMESTAMP"):
            # up to the end of the as-of day, local time
            clauses.append(f"{column} < ?")
            params.append(datetime.combine(as_of + timedelta(days=1), time(), ZoneInfo(TZ)))
        else:
            raise ValueError(f"as_of_column {grant.as_of_column} is {kind}, not a date or timestamp")
    return " AND ".join(clauses), params


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- writing a snapshot ---------------------------------------------------------------------------------
def _write(lake: Store, share: _Prepared, as_of: date, signer) -> PublishedShare:
    agreement, partner = share.agreement, share.agreement.partner
    data = _parquet_bytes(share.table)
    data_sha = mf.sha256(data)
    identity = "|".join(
        [
            mf.FORMAT,
            share.dataset,
            share.grant.model_dump_json(),
            str(agreement.version),
            share.pseudonym_key_id,
            data_sha,
        ]
    )
    snapshot_id = f"{as_of:%Y%m%d}-{mf.sha256(identity.encode())[:12]}"
    prefix = mf.snapshot_prefix(partner, share.dataset, snapshot_id)
    public_key = signer.public_key()
    _ensure_public_key(lake, partner, public_key)

    created = not lake.exists(prefix + mf.SIGNATURE)  # the signature is written last: present = complete
    if created:
        created_at = datetime.now(UTC)
        manifest = {
            "format": mf.FORMAT,
            "partner": partner,
            "dataset": share.dataset,
            "snapshot_id": snapshot_id,
            "as_of": as_of.isoformat(),
            "created_at": created_at.isoformat(),
            "agreement": {
                "version": agreement.version,
                "sha256": agreement.text_sha256,
                "purpose": agreement.purpose,
                "retention_days": agreement.retention_days,
                "expires_on": agreement.expires_on.isoformat(),
            },
            "source": {"table": share.grant.source, "batch_ids": share.batch_ids},
            "files": [
                {"path": DATA_FILE, "sha256": data_sha, "bytes": len(data), "rows": share.table.num_rows}
            ],
            "rows": share.table.num_rows,
            "schema": [{"name": f.name, "type": str(f.type)} for f in share.table.schema],
            "treatments": {c: share.grant.columns[c] for c in share.grant.shared_columns},
            "pseudonym_key_id": share.pseudonym_key_id,
            "signing_key_id": public_key_id(public_key),
            "quality": {"pii_guard": "passed"},
        }
        manifest_bytes = mf.encode(manifest)
        lake.put_bytes(prefix + DATA_FILE, data, "application/vnd.apache.parquet")
        lake.put_bytes(prefix + mf.MANIFEST, manifest_bytes, "application/json")
        lake.put_bytes(prefix + mf.SIGNATURE, mf.sign(manifest_bytes, signer), "text/plain")
    _move_latest(lake, partner, share.dataset, snapshot_id, as_of)
    if created:
        _audit(
            lake,
            {
                "event": "published",
                "partner": partner,
                "dataset": share.dataset,
                "snapshot_id": snapshot_id,
                "as_of": as_of.isoformat(),
                "rows": share.table.num_rows,
                "agreement_version": agreement.version,
                "source_batches": len(share.batch_ids),
                "path": lake.uri(prefix),
            },
        )
        log.info(
            "published %s/%s snapshot %s (%d rows)", partner, share.dataset, snapshot_id, share.table.num_rows
        )
    return PublishedShare(
        partner, share.dataset, snapshot_id, lake.uri(prefix), share.table.num_rows, created
    )


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **PARQUET_OPTIONS)
    return buf.getvalue()


def _ensure_public_key(lake: Store, partner: str, public_key) -> None:
    key = f"share/{partner}/{PUBLIC_KEY_FILE}"
    pem = public_key_pem(public_key)
    if lake.get_bytes(key) != pem:
        lake.put_bytes(key, pem, "application/x-pem-file")


def _move_latest(lake: Store, partner: str, dataset: str, snapshot_id: str, as_of: date) -> None:
    key = mf.dataset_prefix(partner, dataset) + mf.LATEST
    current_bytes = lake.get_bytes(key)
    current = json.loads(current_bytes) if current_bytes else None
    if current and current["snapshot_id"] == snapshot_id:
        return
    if current and date.fromisoformat(current["as_of"]) > as_of:
        log.info(
            "%s/%s: latest stays at %s (as of %s), newer than %s",
            partner,
            dataset,
            current["snapshot_id"],
            current["as_of"],
            as_of,
        )
        return
    pointer = {
        "snapshot_id": snapshot_id,
        "as_of": as_of.isoformat(),
        "manifest": f"{snapshot_id}/{mf.MANIFEST}",
        "updated_at": datetime.now(UTC).isoformat(),
    }
    lake.put_bytes(key, mf.encode(pointer), "application/json")


def _audit(lake: Store, entry: dict) -> None:
    at = datetime.now(UTC)
    entry = {"at": at.isoformat(), **entry}
    name = "-".join(str(entry[k]) for k in ("partner", "dataset", "snapshot_id") if k in entry)
    key = f"audit/publications/{at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S%fZ}-{entry['event']}-{name}.json"
    lake.put_bytes(
        key,
        (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"),
        "application/json",
    )
