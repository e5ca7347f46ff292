"""One storage layer for the lake, the landing zone and partner shares: local disk or S3, chosen by URL.

``file:///abs/path`` keeps objects as files; ``s3://bucket/prefix`` keeps them in an S3-compatible store
(MinIO in production, SeaweedFS in tests). Keys are always '/'-separated and relative to the root, so the
layout is identical in both. pyarrow writes Parquet; the MinIO SDK does the object-store work (buckets,
listing, small objects such as manifests, presigned URLs). Only plain S3 calls are used.
"""

from __future__ import annotations

import io
import os
import pathlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pingan.core.settings import S3Settings

PARQUET_OPTIONS = {"compression": "zstd"}
# Parquet under these prefixes holds raw source values: encrypted with the lake key (pingan/core/lake_crypto.py),
# quarantine with pyarrow's wrapped keys (only pyarrow reads it), raw with the direct key DuckDB reads
ENVELOPE_PREFIXES = ("quarantine/",)
DIRECT_KEY_PREFIXES = ("raw/",)
ENCRYPTED_PREFIXES = ENVELOPE_PREFIXES + DIRECT_KEY_PREFIXES
# DuckDB 1.5.5 fails the AES tag check on an encrypted column chunk of more than one data page
# (tests/privacy/test_parquet_encryption_interop.py): raw files are written one page per column chunk, in
# row groups below pyarrow's 20,000 rows per page, with page and dictionary size limits never reached
DIRECT_KEY_ROW_GROUP_ROWS = 10_000
DIRECT_KEY_PAGE_OPTIONS = {"data_page_size": 1 << 30, "dictionary_pagesize_limit": 1 << 30}


class OnePagePerChunkWriter(pq.ParquetWriter):
    """A Parquet writer whose row groups are small enough to be one data page per column chunk."""

    def write_table(self, table: pa.Table, row_group_size: int | None = None) -> None:
        super().write_table(
            table, min(row_group_size or DIRECT_KEY_ROW_GROUP_ROWS, DIRECT_KEY_ROW_GROUP_ROWS)
        )


class StorageError(RuntimeError):
    pass


class Store:
    """A root (local directory or S3 bucket/prefix) addressed by relative keys."""

    def __init__(self, url: str, s3: S3Settings | None = None, crypto=None):
        self.url = url.rstrip("/")
        # a callable giving the LakeCrypto (loaded at the first encrypted file: prod without a key fails then)
        self._crypto = crypto
        parsed = urlparse(self.url)
        self.scheme = parsed.scheme
        if self.scheme == "file":
            self.root = pathlib.Path(parsed.path)
            self.bucket, self.prefix = "", ""
            self.fs: pafs.FileSystem = pafs.LocalFileSystem()
        elif self.scheme == "s3":
            if s3 is None:
                raise StorageError(f"{url}: an s3:// URL needs PINGAN_S3_ENDPOINT and credentials")
            self.s3 = s3
            self.bucket = parsed.netloc
            self.prefix = parsed.path.strip("/")
            self.fs = pafs.S3FileSystem(
                access_key=s3.access_key,
                secret_key=s3.secret_key,
                endpoint_override=s3.endpoint,
                scheme="https" if s3.secure else "http",
                region=s3.region,
                allow_bucket_creation=False,
            )
            from minio import Minio

            self.minio = Minio(
                s3.endpoint,
                access_key=s3.access_key,
                secret_key=s3.secret_key,
                secure=s3.secure,
                region=s3.region,
            )
        else:
            raise StorageError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket/prefix")

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # --- addressing -------------------------------------------------------------------------------------
    def _object(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _path(self, key: str) -> pathlib.Path:
        return self.root / key.lstrip("/")

    def uri(self, key: str) -> str:
        """Full location of a key as DuckDB and pyarrow spell it (a path locally, s3://... remotely)."""
        if self.scheme == "file":
            return str(self._path(key))
        return f"s3://{self.bucket}/{self._object(key)}"

    def key_of(self, uri: str) -> str:
        """The key of a URI `uri()` gave (the inverse of `uri`)."""
        if self.scheme == "file":
            return pathlib.Path(uri.removeprefix("file://")).relative_to(self.root).as_posix()
        obj = uri.removeprefix(f"s3://{self.bucket}/")
        return obj.removeprefix(f"{self.prefix}/") if self.prefix else obj

    def _fs_path(self, key: str) -> str:
        return str(self._path(key)) if self.scheme == "file" else f"{self.bucket}/{self._object(key)}"

    # --- buckets ----------------------------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the root (directory or bucket) if missing."""
        if self.scheme == "file":
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.minio.bucket_exists(self.bucket):
            self.minio.make_bucket(self.bucket)

    # --- small objects (manifests, state, JSON) ---------------------------------------------------------
    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream", *, durable: bool = True
    ) -> None:
        """Write an object in one step: readers see the old object or the new one, never a part.

        `durable=False` skips the fsync on local disk, for records that may be lost in a power cut
        (quality results, a load's `running` record); commits stay durable."""
        if self.scheme == "file":
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:
            self.minio.put_object(self.bucket, self._object(key), io.BytesIO(data), len(data), content_type)

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Create the object only if the key is free; False when another writer created it first.

        S3's conditional write (`If-None-Match: *`) or, on local disk, an exclusive hard link of a
        complete temporary file: writers on several hosts serialise on it without a lock."""
        if self.scheme == "file":
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        from botocore.exceptions import ClientError

        try:
            self._s3_client().put_object(Bucket=self.bucket, Key=self._object(key), Body=data,
                                         ContentType=content_type, IfNoneMatch="*")  # fmt: skip
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                return False
            raise

    def _s3_client(self):
        """A boto3 client (the MinIO SDK sends no conditional headers), made once per store."""
        if getattr(self, "_boto", None) is None:
            import boto3
            from botocore.config import Config

            self._boto = boto3.client(
                "s3",
                endpoint_url=("https://" if self.s3.secure else "http://") + self.s3.endpoint,
                aws_access_key_id=self.s3.access_key,
                aws_secret_access_key=self.s3.secret_key,
                region_name=self.s3.region,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
            )
        return self._boto

    def get_bytes(self, key: str) -> bytes | None:
        if self.scheme == "file":
            path = self._path(key)
            return path.read_bytes() if path.is_file() else None
        from minio.error import S3Error

        try:
            resp = self.minio.get_object(self.bucket, self._object(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def exists(self, key: str) -> bool:
        if self.scheme == "file":
            return self._path(key).exists()
        from minio.error import S3Error

        try:
            self.minio.stat_object(self.bucket, self._object(key))
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        """All keys under a prefix (recursively), sorted, relative to the root. Temp files are skipped."""
        if self.scheme == "file":
            base = self._path(prefix)
            if base.is_file():
                return [prefix]
            if not base.exists():
                return []
            return sorted(self._walk(base))
        return sorted(key for key, _ in self._objects(prefix))

    def list_stamped(self, prefix: str = "") -> dict[str, str]:
        """Keys under a prefix (as `list`) with a stamp that changes whenever the object is replaced: the S3
        ETag; on disk inode, size and modification time (writes replace files: a new inode). For caches
        that a listing validates (pingan/raw_zone/manifest_index.py)."""
        if self.scheme != "file":
            return {key: (obj.etag or "") for key, obj in self._objects(prefix)}
        out: dict[str, str] = {}
        for key, path in self._walk(self._path(prefix)).items():
            try:
                st = os.stat(path)
            except FileNotFoundError:  # replaced or deleted since the walk listed it
                continue
            out[key] = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        return out

    def _objects(self, prefix: str):
        """(key relative to the root, listed object) of every object under a prefix of the bucket."""
        strip = len(f"{self.prefix}/") if self.prefix else 0
        for obj in self.minio.list_objects(self.bucket, prefix=self._object(prefix), recursive=True):
            if not obj.is_dir:
                yield obj.object_name[strip:], obj

    def _walk(self, base: pathlib.Path) -> dict[str, str]:
        """Key -> path of the files under a local directory (symlinked directories not followed, temp files
        skipped). os.scandir: pathlib's rglob cost 0.3 s on the 6,467 manifests of two years."""
        strip = len(str(self.root)) + 1
        out: dict[str, str] = {}
        pending = [str(base)]
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file() and not entry.name.startswith(".tmp-"):
                    out[entry.path[strip:].replace(os.sep, "/")] = entry.path
        return out

    def delete(self, key: str) -> None:
        if self.scheme == "file":
            self._path(key).unlink(missing_ok=True)
        else:
            self.minio.remove_object(self.bucket, self._object(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        if self.scheme == "file":
            # leave no empty partition directories behind
            base = self._path(prefix)
            for d in (
                sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True) if base.exists() else []
            ):
                if not any(d.iterdir()):
                    d.rmdir()
            if base.is_dir() and not any(base.iterdir()):
                base.rmdir()
        return len(keys)

    def presigned_get(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        if self.scheme == "file":
            return self._path(key).as_uri()
        return self.minio.presigned_get_object(self.bucket, self._object(key), expires=expires)

    # --- Parquet ----------------------------------------------------------------------------------------
    def encrypted(self, key: str) -> bool:
        return self._crypto is not None and key.startswith(ENCRYPTED_PREFIXES)

    def parquet_options(self, key: str) -> dict:
        """Writer options for this key: compression, and the lake key's encryption under ENCRYPTED_PREFIXES."""
        if not self.encrypted(key):
            return dict(PARQUET_OPTIONS)
        crypto = self._crypto()
        if key.startswith(DIRECT_KEY_PREFIXES):
            return {
                **PARQUET_OPTIONS,
                **DIRECT_KEY_PAGE_OPTIONS,
                "encryption_properties": crypto.raw_encryption_properties(),
            }
        return {**PARQUET_OPTIONS, "encryption_properties": crypto.encryption_properties()}

    def _read_options(self, key: str) -> dict:
        if not self.encrypted(key):
            return {}
        crypto = self._crypto()
        if key.startswith(DIRECT_KEY_PREFIXES):
            return {"decryption_properties": crypto.raw_decryption_properties()}
        return {"decryption_properties": crypto.decryption_properties()}

    def parquet_is_encrypted(self, uri: str) -> bool:
        """Whether the Parquet file at this URI (as `uri()` spells it) has an encrypted footer."""
        from pingan.core.lake_crypto import ENCRYPTED_FOOTER_MAGIC

        path = uri.removeprefix("file://") if self.scheme == "file" else uri.removeprefix("s3://")
        with self.fs.open_input_file(path) as fh:
            return fh.read_at(4, fh.size() - 4) == ENCRYPTED_FOOTER_MAGIC

    def duckdb_add_raw_key(self, con) -> None:
        """Give a DuckDB session the raw-zone file key (memory only), to read encrypted raw files."""
        self._crypto().add_duckdb_key(con)

    def duckdb_scan(self, uris: list[str], options: str = "") -> str:
        """A FROM item for DuckDB reading these Parquet files of this store, encrypted or not, for looking at
        the lake by hand (the session needs `duckdb_add_raw_key`). The build and the restricted store read
        raw files through pyarrow instead: see pingan.core.lake_crypto.duckdb_parquet_scan for why."""
        from pingan.core.lake_crypto import duckdb_parquet_scan

        encrypted = {u for u in uris if self.parquet_is_encrypted(u)}
        plain = [u for u in uris if u not in encrypted]
        return duckdb_parquet_scan([u for u in uris if u in encrypted], plain, options)

    @contextmanager
    def parquet_writer(self, key: str, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
        """Stream record batches into one Parquet object (written by pyarrow on local disk or S3)."""
        if self.scheme == "file":
            self._path(key).parent.mkdir(parents=True, exist_ok=True)
        writer = self._writer_class(key)(
            self._fs_path(key), schema, filesystem=self.fs, **self.parquet_options(key)
        )
        try:
            yield writer
        finally:
            writer.close()
            if self.scheme == "file" and self.encrypted(key):
                os.chmod(self._path(key), 0o600)

    def _writer_class(self, key: str) -> type[pq.ParquetWriter]:
        direct = self.encrypted(key) and key.startswith(DIRECT_KEY_PREFIXES)
        return OnePagePerChunkWriter if direct else pq.ParquetWriter

    def parquet_bytes(self, key: str, table: pa.Table) -> bytes:
        """The Parquet file this store would write at `key`, as bytes (for a rewrite put in one step)."""
        buf = io.BytesIO()
        with self._writer_class(key)(buf, table.schema, **self.parquet_options(key)) as writer:
            writer.write_table(table)
        return buf.getvalue()

    def write_parquet(self, key: str, table: pa.Table) -> None:
        with self.parquet_writer(key, table.schema) as writer:
            writer.write_table(table)

    def parquet_file(self, key: str) -> pq.ParquetFile:
        """One Parquet object opened for reading its metadata and columns one at a time."""
        return pq.ParquetFile(self.fs.open_input_file(self._fs_path(key)), **self._read_options(key))

    def read_parquet(self, keys: list[str] | str, columns: list[str] | None = None) -> pa.Table:
        keys = [keys] if isinstance(keys, str) else keys
        tables = [
            pq.read_table(self._fs_path(k), filesystem=self.fs, columns=columns, **self._read_options(k))
            for k in keys
        ]
        return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})

    # --- DuckDB -----------------------------------------------------------------------------------------
    def duckdb_setup(self, con) -> None:
        """Let a DuckDB connection read this store's URIs (httpfs from the installed wheel, never the network)."""
        if self.scheme == "file":
            return
        configure_duckdb_s3(con, self.s3)


def load_httpfs(con) -> None:
    import duckdb_extension_httpfs

    ext_dir = pathlib.Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    candidates = sorted(ext_dir.glob("v*/httpfs.duckdb_extension"))
    if not candidates:
        raise StorageError(f"httpfs extension file not found under {ext_dir}")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(f"INSTALL '{candidates[-1]}'")
    con.execute("LOAD httpfs")


def configure_duckdb_s3(con, s3: S3Settings, secret_name: str = "pingan_lake") -> None:
    load_httpfs(con)
    con.execute(
        f"""CREATE OR REPLACE SECRET {secret_name} (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?,
            URL_STYLE 'path', USE_SSL {str(s3.secure).lower()}, REGION ?)""".replace("?", "'{}'").format(
            s3.access_key.replace("'", "''"),
            s3.secret_key.replace("'", "''"),
            s3.endpoint,
            s3.region,
        )
    )


# Stores are built here only: a stage asks for its deployment's store, it never builds one.
def open_store(url: str, s3: S3Settings | None = None, *, create: bool = False, crypto=None) -> Store:
    """The one store factory: a `file://` or `s3://` root, created if `create` (a bucket must exist);
    `crypto` (a callable giving the lake's Parquet encryption) only for the lake."""
    store = Store(url, s3, crypto=crypto)
    if create:
        store.ensure()
    return store


def lake_store(settings) -> Store:
    """The deployment's lake, created if missing."""
    from pingan.core.lake_crypto import lake_crypto

    return open_store(settings.lake_url, settings.s3, create=True, crypto=lambda: lake_crypto(settings))


def share_store(settings) -> Store:
    """The partner share store (snapshots, pointers, the audit log), created if missing."""
    return open_store(settings.share_url, settings.s3, create=True)


def landing_store(settings) -> Store:
    """The deployment's landing root; every file feed's path is relative to it (never created by us)."""
    return open_store(settings.landing_url, settings.s3)
