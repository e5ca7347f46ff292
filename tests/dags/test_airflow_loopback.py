"""`make airflow` listens on 127.0.0.1 only: the API server on loopback, no log server on 0.0.0.0:8793/8794
(Airflow 3.3 binds those to every interface), the scheduler's health-check server off."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest
import requests
from s3_server import free_port

from pingan.core.settings import PROJECT_ROOT
from pingan.orchestration.local_airflow import LOOPBACK, loopback_command, loopback_environment


def test_scheduler_and_triggerer_start_without_their_log_servers():
    assert loopback_command(["scheduler"]) == ["scheduler", "--skip-serve-logs"]
    assert loopback_command(["triggerer"]) == ["triggerer", "--skip-serve-logs"]
    assert loopback_command(["api-server"]) == ["api-server"]
    assert loopback_command(["dag-processor"]) == ["dag-processor"]
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    assert parser.parse_args(["scheduler", "--skip-serve-logs"]).skip_serve_logs is True
    assert parser.parse_args(["triggerer", "--skip-serve-logs"]).skip_serve_logs is True


def test_the_environment_is_loopback_and_a_public_host_is_refused():
    env = loopback_environment({"PATH": "/bin"})
    assert env["AIRFLOW__API__HOST"] == LOOPBACK
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "False"
    assert env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST"] == LOOPBACK
    with pytest.raises(SystemExit, match="0.0.0.0"):
        loopback_environment({"AIRFLOW__API__HOST": "0.0.0.0"})


def test_make_airflow_runs_standalone_through_the_loopback_launcher():
    recipe = subprocess.run(
        ["make", "-n", "-C", str(PROJECT_ROOT), "-o", ".venv/.installed-stamp", "airflow"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "-m pingan.orchestration.local_airflow" in recipe and "airflow standalone" not in recipe
    assert "AIRFLOW__API__HOST=127.0.0.1" in recipe


def _listening(root: psutil.Process) -> set[tuple[str, int, str]]:
    found = set()
    for proc in [root, *root.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port, " ".join(proc.cmdline()[:3])))
        except psutil.Error:
            pass
    return found


@pytest.mark.slow
def test_make_airflow_listens_on_loopback_only(tmp_path):
    port = free_port()
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW_PORT": str(port)}
    env["PINGAN_HOME"] = str(tmp_path / "home")
    log = (tmp_path / "standalone.log").open("w")
    proc = subprocess.Popen(
        ["make", "-s", "-C", str(PROJECT_ROOT), "-o", ".venv/.installed-stamp", "airflow"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, (tmp_path / "standalone.log").read_text()[-3000:]
            time.sleep(2)
        else:
            raise AssertionError("the API server did not answer within 300 s")
        time.sleep(20)  # the scheduler and triggerer would start their log servers by now
        listening = _listening(psutil.Process(proc.pid))
        assert (LOOPBACK, port) in {(ip, p) for ip, p, _ in listening}, listening
        public = {x for x in listening if x[0] != LOOPBACK}
        assert not public, f"listening beyond loopback: {public}"
        assert not {x for x in listening if x[1] in (8793, 8794)}, listening
        children = " ".join(" ".join(p.cmdline()) for p in psutil.Process(proc.pid).children(recursive=True))
        assert "scheduler --skip-serve-logs" in children and "triggerer --skip-serve-logs" in children
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
