"""A real standalone Spark cluster for tests: one master and two workers on 127.0.0.1.

Started from the installed pyspark's own `bin/spark-class` (the same Master and Worker classes a production
cluster runs), on free loopback ports, each worker with 1 GB and one core, so a build through
`spark://127.0.0.1:<port>` really runs its tasks in two executor processes. Stopped by killing each
daemon's process group (spark-class execs java in a shell of its own).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
WORKER_MEMORY = "1g"
WORKER_CORES = 1


class ClusterUnavailable(RuntimeError):
    """Java or pyspark is missing: the test is skipped with this reason."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> Path:
    """The installed pyspark ships bin/spark-class and the jars a standalone daemon needs."""
    try:
        import pyspark
    except ImportError as exc:
        raise ClusterUnavailable("pyspark is not installed (the `spark` extra)") from exc
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists():
        raise ClusterUnavailable(f"{home} has no bin/spark-class")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise ClusterUnavailable("no Java runtime (java on PATH or JAVA_HOME) for Spark's daemons")
    return home


@dataclass
class SparkCluster:
    master_url: str  # spark://127.0.0.1:<port>
    web_url: str  # the master's web UI, whose /json lists the workers
    work_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def alive_workers(self) -> int:
        state = requests.get(f"{self.web_url}/json", timeout=5).json()
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def applications(self) -> list[dict]:
        """Running and completed applications the master has seen (each with its cores and executors)."""
        state = requests.get(f"{self.web_url}/json", timeout=5).json()
        return state.get("activeapps", []) + state.get("completedapps", [])

    def stop(self) -> None:
        """Kill every daemon's process group; raises if one outlives it (a leaked JVM holds 1 GB)."""
        for proc in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.processes:
            proc.wait(timeout=30)
        self.processes.clear()


def _daemon(home: Path, args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(home / "bin" / "spark-class"), *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: one killpg stops the shell and its java
    )


def _wait(predicate, what: str, cluster: SparkCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            if predicate():
                return
        dead = [p.args[1] for p in cluster.processes if p.poll() is not None]
        if dead:
            raise RuntimeError(
                f"spark daemon {dead} exited while waiting for {what}; logs in {cluster.work_dir}"
            )
        time.sleep(1)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {cluster.work_dir}")


def start_cluster(work_dir: Path, workers: int = 2, timeout: float = 120) -> SparkCluster:
    """A master and `workers` workers on loopback; returns once every worker has registered."""
    home = spark_home()
    work_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(work_dir / "logs"),
        "SPARK_WORKER_DIR": str(work_dir / "work"),
        "SPARK_NO_DAEMONIZE": "1",
    }
    port, web_port = free_port(), free_port()
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", work_dir)
    master_args = [MASTER_CLASS, "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web_port)]
    cluster.processes.append(_daemon(home, master_args, work_dir / "master.log", env))
    try:
        _wait(lambda: requests.get(f"{cluster.web_url}/json", timeout=2).ok, "the master", cluster, timeout)
        for n in range(workers):
            worker_args = [
                WORKER_CLASS, cluster.master_url, "--host", "127.0.0.1", "--port", str(free_port()),
                "--webui-port", str(free_port()), "--memory", WORKER_MEMORY, "--cores", str(WORKER_CORES),
                "--work-dir", str(work_dir / f"worker-{n}"),
            ]  # fmt: skip
            cluster.processes.append(_daemon(home, worker_args, work_dir / f"worker-{n}.log", env))
        _wait(lambda: cluster.alive_workers() == workers, f"{workers} workers", cluster, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster(work_dir: Path, workers: int = 2) -> Iterator[SparkCluster]:
    cluster = start_cluster(work_dir, workers)
    try:
        yield cluster
    finally:
        cluster.stop()
