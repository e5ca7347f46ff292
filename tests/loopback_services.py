"""PostgreSQL 15 and Redis on 127.0.0.1 for tests, from the machine's own packages (Debian's postgresql
and redis-server; `.ci/run` installs them where missing): Airflow's production metadata database and
Celery broker, started in a temporary folder on free ports and killed afterwards.

PostgreSQL refuses to run as root: as root, its folder belongs to the `postgres` system user and its
commands run as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]
DATABASE = "airflow"
USER = "airflow"


class ServiceUnavailable(RuntimeError):
    """The package is not installed: the test is skipped with this reason."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    for folder in POSTGRES_BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ServiceUnavailable("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")


def redis_binary() -> str:
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )
    if not found:
        raise ServiceUnavailable(
            "redis-server is not installed (apt-get install redis-server; .ci/run does it)"
        )
    return found


@dataclass
class Postgres:
    port: int
    data_dir: Path
    run_as: str | None  # the system user PostgreSQL runs as when the tests run as root

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"


def _as_user(run_as: str | None) -> dict:
    return {"user": run_as, "group": pwd.getpwnam(run_as).pw_gid} if run_as else {}


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A fresh cluster with database `airflow` owned by role `airflow` (trust auth on loopback only)."""
    bin_dir = postgres_bin()
    run_as = "postgres" if os.geteuid() == 0 else None
    # not under pytest's tmp folder: that is private to the test's user, and PostgreSQL may run as another
    root = Path(tempfile.mkdtemp(prefix="pingan-pg-"))
    if run_as:
        shutil.chown(root, user=run_as)
    pg = Postgres(free_port(), root / "data", run_as)
    run = _as_user(run_as)
    subprocess.run(
        [bin_dir / "initdb", "-D", pg.data_dir, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, **run,
    )  # fmt: skip
    options = f"-p {pg.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [bin_dir / "pg_ctl", "-D", pg.data_dir, "-o", options, "-l", root / "postgres.log", "-w", "start"]
    try:
        subprocess.run(start, check=True, capture_output=True, **run)
        subprocess.run(
            [bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", USER, DATABASE],
            check=True, capture_output=True,
        )  # fmt: skip
        yield pg
    finally:
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", pg.data_dir, "-m", "immediate", "stop"], capture_output=True, **run
        )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running_redis(work_dir: Path) -> Iterator[str]:
    """redis://127.0.0.1:<port>/0, with no persistence (a broker's queue lives as long as the test)."""
    binary = redis_binary()
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work_dir), "--daemonize", "no"],
        stdout=(work_dir / "redis.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _answers_ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {work_dir / 'redis.log'}")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
