"""`make airflow`: Airflow's standalone mode with every listening socket on 127.0.0.1.

`airflow standalone` starts the scheduler and the triggerer with their log servers, which Airflow 3.3
binds to every interface (`airflow.utils.serve_logs.core` passes `host=""` to uvicorn; no setting
changes it) on fixed ports (`[logging] worker_log_server_port` 8793, `trigger_log_server_port` 8794).
Those servers exist so an API server on another machine can read a running task's log; here every
component shares one machine and one log folder, and the API server reads the files directly. So this
runs standalone with the scheduler and triggerer started with `--skip-serve-logs`, the API server on
`[api] host` 127.0.0.1 and the scheduler's health-check server off (or on loopback when enabled).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

LOOPBACK = "127.0.0.1"
# [section] key -> value forced for every component standalone starts (it passes its environment on)
LOOPBACK_SETTINGS = {
    "AIRFLOW__API__HOST": LOOPBACK,
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": LOOPBACK,
}
SKIP_LOG_SERVER = {"scheduler", "triggerer"}


def loopback_command(command: list[str]) -> list[str]:
    """The airflow sub-command standalone runs, without the log server that would listen on 0.0.0.0."""
    if command and command[0] in SKIP_LOG_SERVER and "--skip-serve-logs" not in command:
        return [*command, "--skip-serve-logs"]
    return list(command)


def loopback_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` with the loopback settings forced; refuses a non-loopback API host set by the caller."""
    host = env.get("AIRFLOW__API__HOST", LOOPBACK)
    if host != LOOPBACK:
        raise SystemExit(f"AIRFLOW__API__HOST={host}: make airflow serves on {LOOPBACK} only")
    return {**env, **LOOPBACK_SETTINGS}


def shared_jwt_secret(env: dict[str, str]) -> dict[str, str]:
    """One JWT secret for every component standalone starts: the scheduler signs the tokens its tasks
    present to the API server, which must verify them with the same secret (kept in AIRFLOW_HOME, made
    once; a secret set by the caller wins)."""
    if env.get("AIRFLOW__API_AUTH__JWT_SECRET"):
        return {}
    home = Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow")
    path = home / "pingan_jwt_secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return {"AIRFLOW__API_AUTH__JWT_SECRET": path.read_text(encoding="utf-8").strip()}


def main() -> None:
    os.environ.update(loopback_environment(dict(os.environ)))
    os.environ.update(shared_jwt_secret(dict(os.environ)))
    from airflow.cli.commands import standalone_command

    class LoopbackSubCommand(standalone_command.SubCommand):
        def __init__(self, parent, name: str, command: list[str], env: dict[str, str]):
            super().__init__(parent, name, loopback_command(command), env)

    standalone_command.SubCommand = LoopbackSubCommand
    standalone_command.StandaloneCommand().run()


if __name__ == "__main__":
    main()
