"""Sharing from both sides: the hub's partners commands, a partner's pull and verify, the share server."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pingan.cli.console import date_option, out
from pingan.core.settings import load_settings


@click.group()
def partners() -> None:
    """Hub side: turn the sharing agreements into each partner's access."""


@partners.command("provision")
@click.option(
    "--backend",
    type=click.Choice(["minio", "seaweedfs", "none"]),
    help="minio: users and IAM policies through the MinIO admin API (production); seaweedfs: rewrite "
    "the identities of SeaweedFS's s3.json (tests); none: only write the partners' profiles. "
    "Default: minio for an s3:// share store, none for a local one.",
)
@click.option(
    "--s3-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The s3.json SeaweedFS starts with (seaweedfs back end).",
)
@click.option(
    "--share-server-url",
    help="Endpoint written into the Delta Sharing profiles "
    "(default $PINGAN_SHARE_SERVER_URL or http://127.0.0.1:8090/delta-sharing).",
)
def partners_provision(backend: str | None, s3_config, share_server_url: str | None) -> None:
    """Grant each partner in force read/list on share/<partner>/ of the share store, remove ended ones.

    Writes each partner's pull profile and Delta Sharing profile under $PINGAN_HOME/partners/<partner>/
    (mode 0600), to hand over out of band. Every grant and removal goes to the audit log.
    """
    from pingan.sharing.provision import provision
    from pingan.sharing.publish import share_store

    settings = load_settings()
    shares = share_store(settings)
    backend = backend or ("minio" if shares.scheme == "s3" else "none")
    result = provision(
        settings, shares, backend=backend, s3_config=s3_config, share_server_url=share_server_url
    )
    for partner, path in sorted(result.profiles.items()):
        state = "granted" if partner in result.granted else "unchanged"
        out.print(f"{partner}: access {state}; profiles in {path.parent}", highlight=False)
    for partner in result.removed:
        out.print(f"{partner}: access removed (agreement ended)", highlight=False)


@partners.command("audit")
@click.option("--last", default=10, show_default=True, help="How many of the latest entries to print.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict and the last entries as JSON.")
@click.option(
    "--copy",
    "copies",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A partner's pull destination this host can reach: its kept audit head is compared too (repeatable).",
)
def partners_audit(last: int, as_json: bool, copies: tuple[Path, ...]) -> None:
    """Verify the sharing audit log: its hash chain, and its completeness against the signed heads held
    outside it (every partner's share, the hub's state, the partner copies given with --copy). A deleted
    log, a deleted tail or a rewritten tail is one line and exit 1; then print the last entries.

    The same log is queryable in the warehouse as audit.share_audit_log.
    """
    from pingan.core import audit
    from pingan.sharing import audit_head
    from pingan.sharing.publish import share_store

    settings = load_settings()
    shares = share_store(settings)
    witnesses = audit_head.collect_witnesses(shares, settings.home, list(copies))
    count = audit.verify_witnessed(shares, witnesses)
    newest = max((w.seq for w in witnesses), default=None)
    latest = audit.entries(shares)[-last:] if last else []
    if as_json:
        data = {"entries": count, "chain": "intact", "witnesses": len(witnesses), "witnessed_up_to": newest,
                "log": shares.uri(audit.PREFIX), "last": latest}  # fmt: skip
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    for entry in latest:
        where = "/".join(x for x in (entry["partner"], entry["dataset"]) if x)
        out.print(f"{entry['seq']:>6} {entry['at'][:19]} {entry['event']:<18} {where}", highlight=False)
    held = f"{len(witnesses)} signed head(s) held outside it agree (up to entry {newest})" if witnesses else (
        "no signed head held outside it yet (publish hands one to every partner)")  # fmt: skip
    out.print(f"audit log: {count} entries, hash chain intact, {held} ({shares.uri(audit.PREFIX)})",
              highlight=False)  # fmt: skip


@partners.command("repoint")
@click.option("--partner", required=True, help="Partner whose pointer is corrected.")
@click.option("--dataset", required=True, help="Dataset whose `latest` pointer is corrected.")
@click.option("--snapshot", "snapshot_id", help="Point at this published snapshot id.")
@click.option(
    "--as-of", "as_of", callback=date_option, help="Point at the newest snapshot published as of this date."
)
@click.option("--reason", required=True, help="Why the pointer was wrong (kept in the audit log).")
def partners_repoint(partner: str, dataset: str, snapshot_id: str | None, as_of, reason: str) -> None:
    """Correct a `latest` pointer advanced wrongly (e.g. published as of a day past the data): point it at
    an already published snapshot, also an older one. The snapshot is verified first, the step back is
    signed into the pointer (partners accept it), and the correction is audited (`pingan partners audit`)."""
    import getpass

    from pingan.core.storage import lake_store
    from pingan.sharing.publish import check_as_of, repoint, share_store

    settings = load_settings()
    if as_of is not None:
        check_as_of(lake_store(settings), as_of)
    pointer = repoint(
        settings, share_store(settings), partner, dataset,
        reason=reason, by=getpass.getuser(), snapshot_id=snapshot_id, as_of=as_of,
    )  # fmt: skip
    replaced = (pointer.correction.replaces if pointer.correction else None) or "nothing"
    out.print(
        f"{partner}/{dataset}: latest -> {pointer.snapshot_id} (as of {pointer.as_of}, sequence "
        f"{pointer.sequence}), replacing {replaced}; audited",
        highlight=False,
    )


@click.group()
def partner() -> None:
    """Partner side: pull the shares an agreement grants and verify them."""


@partner.command("pull")
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The partner profile (share store, credentials, trusted hub key ids) the hub handed over.",
)
@click.option(
    "--dest",
    default="pingan-shares",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Local folder for the snapshots and <partner>.duckdb.",
)
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
def partner_pull(profile_path: str, dest: str, datasets: tuple[str, ...]) -> None:
    """Download the latest snapshots, verify signature, partner, dataset, rollback and hashes; add DuckDB views.

    Only the files added since the snapshot this folder pulled last are downloaded (the others are linked
    from it); a fresh folder downloads everything. Anything that does not verify is refused with one line and not used.
    """
    from pingan.sharing.partner import load_profile, pull

    profile = load_profile(Path(profile_path))
    pulled = pull(profile, Path(dest), list(datasets) or None, warn=_warn)
    for p in pulled:
        out.print(
            f"{p.dataset}: {p.snapshot_id} as of {p.as_of} (version {p.delta_version}), {p.rows:,} rows, "
            f"verified; "
            + (
                f"downloaded {p.files_downloaded} file(s), {p.bytes_downloaded:,} bytes"
                if p.new
                else "already here"
            ),
            highlight=False,
        )
    out.print(
        f"query: .venv/bin/duckdb -readonly {Path(dest) / (profile.partner + '.duckdb')}", highlight=False
    )


def _warn(line: str) -> None:
    out.print(f"warning: {line}", highlight=False)


@partner.command("verify")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--profile",
    "profile_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The partner profile: which partner this copy belongs to and the trusted hub keys.",
)
def partner_verify(path: str, profile_path: str) -> None:
    """Check a local copy (a snapshot folder or a pull destination): signature, partner, dataset, hashes."""
    from pingan.sharing.partner import load_profile, verify_local

    for m in verify_local(Path(path), load_profile(Path(profile_path))):
        out.print(
            f"{m.dataset}: {m.snapshot_id} as of {m.as_of}, {m.rows:,} rows, signed by {m.signing_key_id}: ok",
            highlight=False,
        )


@click.command("share-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, help="Port to listen on.")
def share_server(host: str, port: int) -> None:
    """Serve the partner shares over the Delta Sharing protocol (for pandas, Spark, Power BI clients).

    One bearer token per partner, derived from its agreement (see `pingan partners provision` for the
    profile files); ended agreements get 403; file URLs are pre-signed by the object store (or signed by
    this server for a local share store); every query goes to the audit log.
    """
    import uvicorn

    from pingan.sharing.server import create_app

    uvicorn.run(create_app(load_settings()), host=host, port=port, log_level="warning")
