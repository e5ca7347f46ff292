"""Personal data inside the hub: the restricted tier's commands (issue 18)."""

from __future__ import annotations

import getpass
import json

import click

from pingan.cli.console import date_option, out
from pingan.core.canonical import local_today
from pingan.core.settings import load_settings


@click.group()
def restricted() -> None:
    """The restricted store: raw personal data behind the analysts' pseudonyms (encrypted, audited)."""


@restricted.command("build")
def restricted_build() -> None:
    """Rebuild the restricted store from the lake's committed batches (the night does this after `build`)."""
    from pingan.core.storage import lake_store
    from pingan.raw_zone import committed_batches
    from pingan.raw_zone.retention import reading_batches
    from pingan.warehouse.restricted import build_restricted, restricted_path

    settings = load_settings()
    lake = lake_store(settings)
    batches = committed_batches(lake)
    # leased like a build: a same-day rerun meanwhile must not sweep a batch this is reading
    with reading_batches(lake, [b.batch_id for b in batches], retention=settings.superseded_retention):
        rows = build_restricted(settings, batches, lake, full=True)
    out.print(
        f"restricted store {restricted_path(settings)}: {rows:,} pseudonym → value rows (encrypted, 0600)"
    )


@restricted.command("lookup")
@click.option("--pseudonym", required=True, help="A pseudonym from the analyst warehouse (ps_…).")
@click.option("--case", "case", required=True, help="The case number the lookup is for (audited).")
@click.option("--reason", required=True, help="Why the raw value is needed (audited).")
@click.option("--analyst", help="Who asks (audited); default: the OS user.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def restricted_lookup(pseudonym: str, case: str, reason: str, analyst: str | None, as_json: bool) -> None:
    """The raw values behind one pseudonym; writes an audit entry (who, case, keys) before printing."""
    from pingan.sharing.publish import share_store
    from pingan.warehouse.restricted import lookup

    settings = load_settings()
    result = lookup(
        settings,
        share_store(settings),
        pseudonym,
        analyst=analyst or getpass.getuser(),
        case=case,
        reason=reason,
    )
    if as_json:
        click.echo(json.dumps(result.rows, ensure_ascii=False, default=str))
        return
    if not result.rows:
        out.print(f"{pseudonym}: no raw value in the restricted store (past retention, erased, or unknown)")
    for row in result.rows:
        out.print(
            f"{row['record_id']}  {row['entity']}.{row['column_name']}  {row['value']}", highlight=False
        )


@click.command()
@click.option("--date", "day", callback=date_option, help="The day retention is judged on (default: today).")
def retention(day) -> None:
    """Remove raw personal data past its retention (canonical PERSONAL_DATA_RETENTION_DAYS) from the
    restricted store and the lake (raw values become their pseudonyms; quarantined values and quality
    samples are dropped); the pseudonymised facts stay. An audit entry with the counts for each."""

    from pingan.core.storage import lake_store
    from pingan.raw_zone import committed_batches
    from pingan.sharing.publish import share_store
    from pingan.warehouse.restricted import apply_retention

    settings = load_settings()
    lake = lake_store(settings)
    counts = apply_retention(
        settings, committed_batches(lake), lake, share_store(settings), day or local_today()
    )
    out.print(
        f"restricted store: {counts['rows_before']:,} → {counts['rows_after']:,} rows "
        f"({counts['batches_past_retention']} batches past retention on {counts['as_of']})"
    )
    from pingan.core.pseudonym import load_hub_key
    from pingan.ops.retention_lake import apply_lake_retention

    lake_counts = apply_lake_retention(
        lake, load_hub_key(settings), share_store(settings), day or local_today()
    )
    out.print(
        f"lake: {sum(lake_counts.batches.values())} batches past retention rewritten, "
        f"{sum(lake_counts.values.values()):,} raw values pseudonymised, "
        f"{lake_counts.quarantine_rows:,} quarantined rows and {lake_counts.validations} validations cleared"
    )


@click.group()
def subject() -> None:
    """One person's rights (PIPL art. 46-47): erase or correct their data everywhere the hub holds it."""


def _subject_options(fn):
    fn = click.option("--by", help="Who carries the request out (audited); default: the OS user.")(fn)
    fn = click.option("--reason", required=True, help="Why (the request's reference; audited).")(fn)
    fn = click.option("--phone", multiple=True, help="A phone number the person is known by.")(fn)
    return click.option(
        "--id-number", "id_numbers", multiple=True, help="A resident ID number of the person."
    )(fn)


@subject.command("erase")
@_subject_options
def subject_erase(id_numbers: tuple[str, ...], phone: tuple[str, ...], reason: str, by: str | None) -> None:
    """Remove the person's identifiers from the lake, quarantine, warehouse, restricted store and shares
    (older Delta versions included); one audit entry with counts, never the values."""
    _carry_out("erase", {v: None for v in (*id_numbers, *phone)}, reason, by)


@subject.command("correct")
@_subject_options
@click.option("--to", "new_value", required=True, help="The right value.")
def subject_correct(
    id_numbers: tuple[str, ...], phone: tuple[str, ...], reason: str, by: str | None, new_value: str
) -> None:
    """Replace one wrong identifier (--id-number or --phone) by --to everywhere, shares republished."""
    _carry_out("correct", {v: new_value for v in (*id_numbers, *phone)}, reason, by)


def _carry_out(action: str, identifiers: dict[str, str | None], reason: str, by: str | None) -> None:
    from pingan.core.storage import lake_store, share_store
    from pingan.ops.erasure import SubjectRequestError, carry_out
    from pingan.ops.subject import SubjectRequest

    settings = load_settings()
    request = SubjectRequest(action, identifiers, reason, by or getpass.getuser())
    try:
        report = carry_out(settings, lake_store(settings), share_store(settings), request)
    except SubjectRequestError as exc:
        raise click.UsageError(str(exc)) from None
    c = report.counts
    out.print(
        f"{report.event} (audit entry {report.audit_seq}): lake {c['lake_raw']['rows']} raw and "
        f"{c['lake_quarantine']['rows']} quarantined rows ({c['lake_batches_recommitted']} batches re-committed), "
        f"restricted store {c['restricted_store']['rows']} rows, warehouse {c['warehouse']['rows']} rows, "
        f"shares: {len(c['shares']['datasets'])} datasets held them ({len(c['shares']['republished'])} "
        f"snapshots republished, {c['shares']['older_snapshots_deleted']} older snapshots deleted)"
        + ("" if report.found else ": nothing held this person"),
        highlight=False,
    )
