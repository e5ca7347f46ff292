"""The sharing commands: help that explains, profiles from provisioning, pull and verify, one-line refusals."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner
from share_fixtures import AS_OF

from pingan.cli.app import main
from pingan.sharing.publish import publish


@pytest.mark.parametrize(
    "command",
    [
        ["partners", "provision"],
        ["partners", "audit"],
        ["partner", "pull"],
        ["partner", "verify"],
        ["share-server"],
        ["publish"],
    ],
)
def test_every_sharing_command_explains_itself(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and len(result.output.splitlines()) > 5, result.output


def test_provision_pull_verify_and_a_refused_copy(share_env, agreements_dir, monkeypatch, tmp_path):
    settings, lake, shares = share_env
    monkeypatch.setenv("PINGAN_AGREEMENTS_DIR", str(agreements_dir))
    publish(settings, lake, shares, partners=["jinshan"], as_of=AS_OF, agreements_dir=agreements_dir,
            today=date(2025, 3, 3))  # fmt: skip
    runner = CliRunner()
    provisioned = runner.invoke(main, ["partners", "provision", "--backend", "none"])
    assert provisioned.exit_code == 0, provisioned.output
    assert "jinshan: access unchanged; profiles in" in provisioned.output
    profile = str(settings.home / "partners" / "jinshan" / "pull-profile.json")
    dest = tmp_path / "jinshan-copy"
    pulled = runner.invoke(main, ["partner", "pull", "--profile", profile, "--dest", str(dest)])
    assert pulled.exit_code == 0, pulled.output
    assert "joint_operations: " in pulled.output and "verified" in pulled.output
    verified = runner.invoke(main, ["partner", "verify", str(dest), "--profile", profile])
    assert verified.exit_code == 0 and verified.output.count(": ok") == 2, verified.output  # agreement v3

    manifest = next(dest.glob("joint_operations/*/manifest.json"))
    manifest.write_text(manifest.read_text().replace('"rows": 1', '"rows": 2'))
    refused = runner.invoke(main, ["partner", "verify", str(dest), "--profile", profile])
    assert refused.exit_code == 1 and "signature does not verify" in refused.output
    assert "Traceback" not in refused.output


def test_audit_command_verifies_the_chain(share_env, agreements_dir, monkeypatch):
    import json

    from pingan.core import audit

    settings, lake, shares = share_env
    publish(settings, lake, shares, partners=["pinghu"], as_of=AS_OF, agreements_dir=agreements_dir,
            today=date(2025, 3, 3))  # fmt: skip
    ok = CliRunner().invoke(main, ["partners", "audit", "--last", "2"])
    assert ok.exit_code == 0 and "hash chain intact" in ok.output and "published" in ok.output, ok.output
    entry = json.loads(shares.get_bytes(audit.entry_key(1)))
    entry["detail"]["rows"] = 0
    shares.put_bytes(audit.entry_key(1), json.dumps(entry).encode())
    broken = CliRunner().invoke(main, ["partners", "audit"])
    assert broken.exit_code == 1 and "entry altered" in broken.output
