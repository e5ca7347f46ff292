"""`pingan share-server`: the partner shares over the open Delta Sharing protocol (FastAPI + uvicorn).

Each partner is a recipient and sees one share named after it (`wujiang`), one schema named by its
agreement (`qingwujia`), and one table per granted dataset with a published `latest` pointer. A stock
client reads `<profile>#wujiang.qingwujia.border_incidents`. Endpoints, under /delta-sharing:

    GET  /shares, /shares/{share}, /shares/{share}/schemas, /shares/{share}/schemas/{schema}/tables,
         /shares/{share}/all-tables
    GET|HEAD .../tables/{table}/version      header delta-table-version
    GET  .../tables/{table}/metadata         NDJSON: protocol, metaData (+ delta-table-version header)
    POST .../tables/{table}/query            NDJSON: protocol, metaData, one `file` line per data file;
                                             with startingVersion (endingVersion): the `add`/`remove`
                                             lines of the versions since (a partner reads only new files)
    GET  .../tables/{table}/changes?startingVersion=&endingVersion=   change data feed: `cdf` lines of
                                             the versions a merge wrote, `add`/`remove` of full snapshots

Authentication: `Authorization: Bearer <token>`, the token derived from the partner's agreement
(recipients.py); an unknown token is 401, an agreement that ended (real date) is 403. Agreements are
read on every request, so a revocation or expiry takes effect at once. `version` in a query is time
travel to an earlier snapshot (the Delta table's version); snapshots removed under retention are gone.
File URLs are pre-signed by the object store for an s3:// share store, or signed (HMAC, expiring) by
this server for a local one. Every query, and every refusal, is appended to the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from pingan.core import audit
from pingan.core.canonical import local_today
from pingan.core.settings import Settings
from pingan.sharing import delta, incremental
from pingan.sharing import manifest as mf
from pingan.sharing.agreements import Agreement, load_agreements
from pingan.sharing.publish import share_store
from pingan.sharing.ranged_file import RangeNotSatisfiable, file_response
from pingan.sharing.recipients import bearer_token, recipient_key, tokens_match
from pingan.sharing.server_requests import BadRequest, query_body

PREFIX = "/delta-sharing"
URL_TTL = timedelta(minutes=15)
VERSION_HEADER = "delta-table-version"
NDJSON = "application/x-ndjson"


class ProtocolError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ShareService:
    """What the endpoints share: the share store, the recipients' agreements, the file-URL key, the clock.
    It holds no state a request changes (agreements are read on every request)."""

    def __init__(self, settings: Settings, agreements_dir: Path | None, today):
        self.settings = settings
        self.shares = share_store(settings)
        key = recipient_key(settings.home / "secrets", allow_generate=self.shares.scheme == "file")
        self.recipient_key = key
        self.url_key = hmac.new(key, b"file-url", hashlib.sha256).digest()
        self.agreements_dir = agreements_dir or settings.agreements_dir
        self.today = today

    def recipient(self, request: Request) -> Agreement:
        """The agreement whose bearer token the request carries: 401 unknown, 403 ended (both audited)."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        agreements = load_agreements(self.agreements_dir)
        found = next(
            (
                a
                for a in agreements.values()
                if token and tokens_match(token, bearer_token(self.recipient_key, a))
            ),
            None,
        )
        if found is None:
            audit.append(self.shares, "protocol_denied", status=401, path=request.url.path)
            raise ProtocolError(401, "UNAUTHENTICATED", "unknown or outdated bearer token")
        today = self.today()
        if not found.is_in_force(today):
            audit.append(self.shares, "protocol_denied", partner=found.partner, status=403, path=request.url.path,
                         reason=found.ended_why(today))  # fmt: skip
            raise ProtocolError(403, "PERMISSION_DENIED", f"the sharing agreement {found.ended_why(today)}")
        return found

    def tables(self, agreement: Agreement) -> list[dict]:
        return [
            {"name": dataset, "schema": agreement.schema_name, "share": agreement.partner,
             "shareId": agreement.partner, "id": f"{agreement.partner}.{dataset}"}
            for dataset in agreement.datasets
            if self.shares.exists(mf.dataset_prefix(agreement.partner, dataset) + mf.LATEST)
        ]  # fmt: skip

    def pointer(self, agreement: Agreement, share: str, schema: str, table: str) -> mf.LatestPointer:
        """The table's current `latest` pointer (404 for a table not granted or not published)."""
        check_share(agreement, share, schema)
        key = mf.dataset_prefix(agreement.partner, table) + mf.LATEST
        data = self.shares.get_bytes(key)
        if table not in agreement.datasets or data is None:
            raise ProtocolError(404, "RESOURCE_DOES_NOT_EXIST", f"table {share}.{schema}.{table} not found")
        try:
            return mf.read_pointer(json.loads(data), key)
        except (ValueError, mf.ManifestError):
            raise ProtocolError(
                500, "INTERNAL_ERROR", f"table {share}.{schema}.{table}: unreadable pointer"
            ) from None

    def live_versions(self, partner: str, dataset: str) -> set[int]:
        """Delta versions that still have a snapshot manifest (retention removes the others)."""
        base = mf.dataset_prefix(partner, dataset) + mf.SNAPSHOTS
        return {
            mf.read_manifest(json.loads(self.shares.get_bytes(k)), k).delta_version
            for k in self.shares.list(base)
            if k.endswith("/" + mf.MANIFEST)
        }

    def metadata_lines(self, agreement: Agreement, dataset: str, version: int) -> list[dict]:
        prefix = mf.dataset_prefix(agreement.partner, dataset)
        dt = delta.open_table(self.shares, prefix, version)
        files = delta.files(self.shares, prefix, version)
        meta = {
            "id": dt.metadata().id,
            "name": dataset,
            "description": agreement.datasets[dataset].description,
            "format": {"provider": "parquet"},
            "schemaString": dt.schema().to_json(),
            "partitionColumns": [],
            "configuration": _configuration(dt),
            "version": version,
            "size": sum(f.size for f in files),
            "numFiles": len(files),
        }
        return [{"protocol": {"minReaderVersion": 1}}, {"metaData": meta}]

    def file_url(self, request: Request, key: str) -> str:
        """Pre-signed by the object store, or signed (HMAC, expiring) by this server for a local store."""
        if self.shares.scheme == "s3":
            return self.shares.presigned_get(key, URL_TTL)
        expires = int(time.time() + URL_TTL.total_seconds())
        payload = base64.urlsafe_b64encode(f"{key}|{expires}".encode()).decode().rstrip("=")
        signature = hmac.new(self.url_key, payload.encode(), hashlib.sha256).hexdigest()
        return str(request.base_url).rstrip("/") + f"{PREFIX}/files/{payload}.{signature}"

    def version_window(
        self, agreement: Agreement, table: str, latest: mf.LatestPointer, starting, ending
    ) -> tuple[int, int]:
        """[startingVersion, endingVersion] checked against what is published: from the oldest snapshot
        still kept (retention removes older files) to the version the signed `latest` pointer names."""
        newest = latest.delta_version
        ending = newest if ending is None else ending
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (starting, ending)):
            raise ProtocolError(
                400, "INVALID_PARAMETER_VALUE", "startingVersion and endingVersion are integers"
            )
        oldest = min(self.live_versions(agreement.partner, table), default=newest)
        if not oldest <= starting <= newest or ending < starting:
            raise ProtocolError(400, "INVALID_PARAMETER_VALUE",
                                f"versions {starting}..{ending} of {table}: available {oldest}..{newest}")  # fmt: skip
        return starting, min(ending, newest)

    def change_lines(
        self, request: Request, prefix: str, window: tuple[int, int], *, cdf: bool
    ) -> list[dict]:
        """One line per data change file of the versions in the window. cdf: a version with change-data
        files answers with those (`cdf`), one without with its added and removed files (the rows they hold
        were inserted or deleted), as Delta's change data feed reads them."""
        expires_ms = int((time.time() + URL_TTL.total_seconds()) * 1000)
        lines = []
        for version in range(window[0], window[1] + 1):
            try:
                actions = incremental.version_actions(self.shares, prefix, version)
            except FileNotFoundError:  # the log was cleaned up past its retention
                raise ProtocolError(
                    400, "INVALID_PARAMETER_VALUE", f"version {version}'s changes are no longer kept"
                ) from None
            kinds = (
                [("cdf", actions.cdc)]
                if cdf and actions.cdc
                else [("add", actions.added), ("remove", actions.removed)]
            )
            for kind, files in kinds:
                for f in files:
                    entry = {"url": self.file_url(request, prefix + f["path"]), "id": _file_id(f["path"]),
                             "partitionValues": f.get("partitionValues") or {}, "size": int(f.get("size") or 0),
                             "timestamp": actions.timestamp_ms, "version": version,
                             "expirationTimestamp": expires_ms}  # fmt: skip
                    if kind == "add" and f.get("stats"):
                        entry["stats"] = f["stats"]
                    lines.append({kind: entry})
        return lines

    def snapshot_lines(self, request: Request, agreement: Agreement, table: str, version: int) -> list[dict]:
        """metadata and one `file` line per data file of the table at a version (time travel)."""
        if not isinstance(version, int) or version not in self.live_versions(agreement.partner, table):
            raise ProtocolError(
                400, "INVALID_PARAMETER_VALUE", f"version {version!r} of {table} is not available"
            )
        prefix = mf.dataset_prefix(agreement.partner, table)
        lines = self.metadata_lines(agreement, table, version)
        expires_ms = int((time.time() + URL_TTL.total_seconds()) * 1000)
        for f in delta.files(self.shares, prefix, version):
            entry = {"url": self.file_url(request, prefix + f.path), "id": _file_id(f.path),
                     "partitionValues": {}, "size": f.size, "expirationTimestamp": expires_ms}  # fmt: skip
            if f.stats:
                entry["stats"] = f.stats
            lines.append({"file": entry})
        return lines


def check_share(agreement: Agreement, share: str, schema: str | None = None) -> None:
    if share != agreement.partner:
        raise ProtocolError(404, "RESOURCE_DOES_NOT_EXIST", f"share {share!r} not found")
    if schema is not None and schema != agreement.schema_name:
        raise ProtocolError(404, "RESOURCE_DOES_NOT_EXIST", f"schema {share}.{schema} not found")


def ndjson(lines: list[dict], version: int) -> Response:
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return Response(body, media_type=NDJSON, headers={VERSION_HEADER: str(version)})


def create_app(settings: Settings, *, agreements_dir: Path | None = None, today=local_today) -> FastAPI:
    service = ShareService(settings, agreements_dir, today)
    app = FastAPI(title="Pingan Delta Sharing", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(ProtocolError, _protocol_error)
    app.add_exception_handler(BadRequest, _bad_request)
    app.add_exception_handler(RequestValidationError, _invalid)
    _listing_routes(app, service)
    _table_routes(app, service)
    _file_route(app, service)
    return app


async def _protocol_error(_request: Request, exc: ProtocolError):
    return JSONResponse({"errorCode": exc.code, "message": exc.message}, status_code=exc.status)


async def _bad_request(_request: Request, exc: BadRequest):
    return JSONResponse({"errorCode": "INVALID_PARAMETER_VALUE", "message": str(exc)}, status_code=400)


async def _invalid(_request: Request, exc: RequestValidationError):
    message = "; ".join(str(e.get("msg", "")) for e in exc.errors())[:200] or "invalid request"
    return JSONResponse({"errorCode": "INVALID_PARAMETER_VALUE", "message": message}, status_code=400)


def _listing_routes(app: FastAPI, service: ShareService) -> None:
    """/shares, a share, its schemas, its tables."""

    @app.get(PREFIX + "/shares")
    def list_shares(request: Request):
        agreement = service.recipient(request)
        return {"items": [{"name": agreement.partner, "id": agreement.partner}]}

    @app.get(PREFIX + "/shares/{share}")
    def get_share(share: str, request: Request):
        check_share(service.recipient(request), share)
        return {"share": {"name": share, "id": share}}

    @app.get(PREFIX + "/shares/{share}/schemas")
    def list_schemas(share: str, request: Request):
        agreement = service.recipient(request)
        check_share(agreement, share)
        return {"items": [{"name": agreement.schema_name, "share": share}]}

    @app.get(PREFIX + "/shares/{share}/schemas/{schema}/tables")
    def list_tables(share: str, schema: str, request: Request):
        agreement = service.recipient(request)
        check_share(agreement, share, schema)
        return {"items": service.tables(agreement)}

    @app.get(PREFIX + "/shares/{share}/all-tables")
    def all_tables(share: str, request: Request):
        agreement = service.recipient(request)
        check_share(agreement, share)
        return {"items": service.tables(agreement)}


def _table_routes(app: FastAPI, service: ShareService) -> None:
    """A table's version, metadata, query (snapshot, time travel or the changes since a version), changes."""
    table_path = PREFIX + "/shares/{share}/schemas/{schema}/tables/{table}"

    @app.api_route(table_path + "/version", methods=["GET", "HEAD"])
    def table_version(share: str, schema: str, table: str, request: Request):
        latest = service.pointer(service.recipient(request), share, schema, table)
        return Response(status_code=200, headers={VERSION_HEADER: str(latest.delta_version)})

    @app.get(table_path + "/metadata")
    def table_metadata(share: str, schema: str, table: str, request: Request):
        agreement = service.recipient(request)
        version = service.pointer(agreement, share, schema, table).delta_version
        return ndjson(service.metadata_lines(agreement, table, version), version)

    @app.get(table_path + "/changes")
    def table_changes(share: str, schema: str, table: str, request: Request):
        return _changes(service, request, share, schema, table)

    @app.post(table_path + "/query")
    async def query_table(share: str, schema: str, table: str, request: Request):
        agreement = service.recipient(request)
        latest = service.pointer(agreement, share, schema, table)
        params = query_body(await request.body())  # BadRequest: a 400 naming what is wrong
        return _query(service, request, agreement, table, latest, params)


def _changes(service: ShareService, request: Request, share: str, schema: str, table: str) -> Response:
    """The change data feed between two versions."""
    agreement = service.recipient(request)
    latest = service.pointer(agreement, share, schema, table)
    params = request.query_params
    if params.get("startingTimestamp") or params.get("endingTimestamp"):
        raise ProtocolError(
            400, "INVALID_PARAMETER_VALUE", "only startingVersion/endingVersion are supported"
        )
    if params.get("startingVersion") is None:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", "startingVersion is required")
    window = service.version_window(agreement, table, latest, _int(params.get("startingVersion")),
                                    _int(params.get("endingVersion")))  # fmt: skip
    prefix = mf.dataset_prefix(agreement.partner, table)
    lines = service.metadata_lines(agreement, table, window[1])
    changes = service.change_lines(request, prefix, window, cdf=True)
    audit.append(service.shares, "protocol_changes", partner=agreement.partner, dataset=table,
                 starting_version=window[0], ending_version=window[1], files=len(changes))  # fmt: skip
    return ndjson(lines + changes, window[0])


def _query(
    service: ShareService,
    request: Request,
    agreement: Agreement,
    table: str,
    latest: mf.LatestPointer,
    params: dict,
) -> Response:
    """A query: the data change files since startingVersion (streaming), else the files of a version."""
    if params.get("timestamp"):
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", "only version time travel is supported")
    if params.get("startingVersion") is not None:
        window = service.version_window(
            agreement, table, latest, params["startingVersion"], params.get("endingVersion")
        )
        prefix = mf.dataset_prefix(agreement.partner, table)
        changes = service.change_lines(request, prefix, window, cdf=False)
        audit.append(service.shares, "protocol_query", partner=agreement.partner, dataset=table,
                     starting_version=window[0], ending_version=window[1], files=len(changes))  # fmt: skip
        return ndjson(service.metadata_lines(agreement, table, window[1]) + changes, window[0])
    version = params.get("version", latest.delta_version)
    lines = service.snapshot_lines(request, agreement, table, version)
    audit.append(service.shares, "protocol_query", partner=agreement.partner, dataset=table, version=version,
                 files=len(lines) - 2, limit_hint=params.get("limitHint"))  # fmt: skip
    return ndjson(lines, version)


def _file_route(app: FastAPI, service: ShareService) -> None:
    @app.api_route(PREFIX + "/files/{signed}", methods=["GET", "HEAD"])
    def signed_file(signed: str, request: Request):
        """A data file of a local share store, for a URL this server signed (no bearer token: like S3),
        with byte ranges, ETag and HEAD as an object store answers."""
        key = _signed_key(service.url_key, signed)
        data = service.shares.get_bytes(key)
        if data is None:
            raise ProtocolError(404, "RESOURCE_DOES_NOT_EXIST", "file removed")
        try:
            return file_response(data, request.headers.get("range"), head=request.method == "HEAD")
        except RangeNotSatisfiable:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})


def _signed_key(url_key: bytes, signed: str) -> str:
    """The share-store key a signed file URL names, if its signature holds and it has not expired."""
    payload, _, signature = signed.rpartition(".")
    expected = hmac.new(url_key, payload.encode(), hashlib.sha256).hexdigest()
    if not payload or not hmac.compare_digest(signature, expected):
        raise ProtocolError(403, "PERMISSION_DENIED", "bad file URL signature")
    key, _, expires = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().rpartition("|")
    if int(expires) < time.time():
        raise ProtocolError(403, "PERMISSION_DENIED", "file URL expired")
    return key


def _file_id(path: str) -> str:
    """The same file has the same id in every answer (clients cache by it)."""
    return hashlib.sha256(path.encode()).hexdigest()


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", f"{value!r} is not a version number") from None


def _configuration(dt) -> dict[str, str]:
    enabled = dt.metadata().configuration.get(delta.CDF_PROPERTY) == "true"
    return {"enableChangeDataFeed": "true"} if enabled else {}
