"""The audit log's completeness is witnessed: signed heads in the partners' shares, the hub's state and the
partners' copies catch a deleted tail, a rewritten tail and a deleted log, each in one line, exit 1."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest
from click.testing import CliRunner

from pingan.cli.app import main
from pingan.core import audit
from pingan.sharing import audit_head
from pingan.sharing.partner import load_profile, pull
from pingan.sharing.provision import provision
from pingan.sharing.publish import publish

TODAY = date(2025, 3, 5)


@pytest.fixture
def witnessed(share_env, agreements_dir, tmp_path):
    """Published for Wujiang and Jiashan, Wujiang's copy pulled (it keeps the signed head)."""
    settings, lake, shares = share_env
    publish(settings, lake, shares, partners=["wujiang", "jiashan"], as_of=date(2025, 3, 3),
            agreements_dir=agreements_dir, today=TODAY)  # fmt: skip
    provision(settings, shares, backend="none", today=TODAY, agreements_dir=agreements_dir)
    copy = tmp_path / "wujiang-copy"
    pull(load_profile(settings.home / "partners" / "wujiang" / "pull-profile.json"), copy)
    return settings, shares, copy


def run_audit(*copies) -> tuple[int, str]:
    """The exit code and the first line `pingan partners audit` prints."""
    args = ["partners", "audit", "--last", "0"] + [a for c in copies for a in ("--copy", str(c))]
    result = CliRunner().invoke(main, args)
    return result.exit_code, (result.output.splitlines() or [""])[0]


def rewrite_from(shares, seq: int) -> None:
    """What an adversary with write access does: alter entry seq, recompute every later hash and link."""
    items = audit.entries(shares)
    items[seq]["detail"]["rows"] = 0
    previous = items[seq - 1]["hash"]
    for entry in items[seq:]:
        entry["prev_hash"] = previous
        entry["hash"] = previous = audit._digest(entry)
        shares.put_bytes(audit.entry_key(entry["seq"]), audit._encode(entry))
    shares.put_bytes(audit.HEAD, audit._encode({"seq": items[-1]["seq"], "hash": previous}))


def truncate(shares, keep: int, *, head: str) -> None:
    for entry in audit.entries(shares)[keep:]:
        shares.delete(audit.entry_key(entry["seq"]))
    if head == "deleted":
        shares.delete(audit.HEAD)
    else:  # a consistent head for the shortened log
        last = audit.entries(shares)[-1]
        shares.put_bytes(audit.HEAD, audit._encode({"seq": last["seq"], "hash": last["hash"]}))


def test_a_deleted_tail_a_rewritten_tail_and_a_deleted_log_are_each_reported(witnessed):
    settings, shares, copy = witnessed
    code, line = run_audit(copy)
    # two partners' shares, the hub's state, the partner's copy
    assert code == 0 and "4 signed head(s) held outside it agree" in line, line
    kept = json.loads((copy / audit_head.COPY_HEAD).read_text())
    assert kept["partner"] == "wujiang" and kept["seq"] == audit.head(shares).seq
    log_dir = settings.home / "shares" / "audit"
    original = {p: p.read_bytes() for p in log_dir.rglob("*.json")}
    length = len(original) - 1  # entries, without head.json
    published = [e["seq"] for e in audit.entries(shares) if e["event"] == "published"]

    damages = {
        "tail and head.json deleted": lambda: truncate(shares, length - 3, head="deleted"),
        "tail deleted, head.json rewritten": lambda: truncate(shares, length - 3, head="rewritten"),
        "tail rewritten, hashes recomputed": lambda: rewrite_from(shares, published[-1]),
        "log deleted": lambda: shares.delete_prefix("audit/"),
    }
    expected = {
        "tail and head.json deleted": f"truncated: it ends at entry {length - 4}, but",
        "tail deleted, head.json rewritten": f"truncated: it ends at entry {length - 4}, but",
        "tail rewritten, hashes recomputed": "the audit log was rewritten: entry",
        "log deleted": "the audit log was deleted: it holds no entries",
    }
    for name, damage in damages.items():
        damage()
        if name != "log deleted":
            audit.verify_chain(shares)  # the chain alone cannot tell
        code, line = run_audit(copy)
        assert code == 1 and expected[name] in line, (name, line)
        shutil.rmtree(log_dir, ignore_errors=True)
        for path, data in original.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        assert run_audit(copy)[0] == 0


def test_the_partners_copy_alone_still_catches_a_truncation(witnessed):
    """The adversary also removes the heads in the share store and the hub's state: the copy remains."""
    settings, shares, copy = witnessed
    for key in shares.list("share/"):
        if key.endswith((audit_head.HEAD_FILE, audit_head.HEAD_SIGNATURE)):
            shares.delete(key)
    for f in audit_head.hub_head_dir(settings.home).iterdir():
        f.unlink()
    truncate(shares, len(audit.entries(shares)) - 2, head="deleted")
    assert run_audit()[0] == 0  # nothing left on the hub's side to compare with
    code, output = run_audit(copy)
    assert code == 1 and f"the partner copy at {copy} holds its signed head" in output, output


def test_a_forged_head_in_a_copy_is_refused(witnessed):
    _, shares, copy = witnessed
    kept = json.loads((copy / audit_head.COPY_HEAD).read_text())
    kept["seq"] += 100
    (copy / audit_head.COPY_HEAD).write_text(json.dumps(kept))
    code, output = run_audit(copy)
    assert code == 1 and "signature does not verify" in output, output


def test_a_pull_reports_a_head_that_went_back(witnessed, share_env):
    settings, shares, copy = witnessed
    kept = json.loads((copy / audit_head.COPY_HEAD).read_text())
    truncate(shares, kept["seq"] - 1, head="deleted")  # and the hub re-signs the shortened log
    signer = audit_head.signing_key(settings.home / "secrets", allow_generate=False)
    audit_head.publish_heads(shares, ["wujiang"], signer, settings.home)
    lines: list[str] = []
    pull(load_profile(settings.home / "partners" / "wujiang" / "pull-profile.json"), copy, warn=lines.append)
    assert len(lines) == 1 and f"went back from entry {kept['seq']}" in lines[0]
    assert json.loads((copy / audit_head.COPY_HEAD).read_text())["seq"] == kept["seq"]  # evidence kept
