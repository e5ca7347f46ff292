"""Agreements are validated data: the repository's load, and mistakes name the file and the key."""

from __future__ import annotations

import pytest

from pingan.sharing.agreements import AgreementError, load_agreement, load_agreements
from pingan.sharing.pseudonymise import pseudonym, pseudonymise_value

WUJIANG = """\
partner: wujiang
partner_name: 吴江区
jurisdiction_code: "320509"
framework: qingwujia
version: 2
purpose: Joint prevention in the border towns.
retention_days: 30
expires_on: 2027-12-31
datasets:
  border_incidents:
    source: fct_incidents
    description: Border-town incidents.
    row_filter:
      - {column: is_border_town, equals: true}
    columns:
      record_id: key_per_partnership
      caller_phone: pseudonymise
"""


def test_repository_agreements_load():
    agreements = load_agreements()
    assert set(agreements) == {"wujiang", "jiashan", "pinghu", "jinshan"}
    assert agreements["wujiang"].jurisdiction_code == "320509"
    incident_pii = {"caller_phone", "involved_id_numbers"}
    for agreement in agreements.values():
        for grant in agreement.datasets.values():
            pii = incident_pii & set(grant.columns)
            assert all(grant.columns[c] in ("pseudonymise", "drop") for c in pii), agreement.partner


def test_agreement_parses(tmp_path):
    path = tmp_path / "wujiang.yaml"
    path.write_text(WUJIANG, encoding="utf-8")
    agreement = load_agreement(path)
    grant = agreement.datasets["border_incidents"]
    assert grant.row_filter[0].equals is True
    assert grant.shared_columns == ["record_id", "caller_phone"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (WUJIANG.replace("    columns:", "    colums:"), "datasets.border_incidents.colums: unknown key"),
        (
            WUJIANG.replace("caller_phone: pseudonymise", "caller_phone: hash"),
            "datasets.border_incidents.columns.caller_phone",
        ),
        (WUJIANG.replace("{column: is_border_town, equals: true}", "{column: is_border_town}"), "row_filter"),
        (WUJIANG.replace('jurisdiction_code: "320509"', "jurisdiction_code: 3205"), "jurisdiction_code"),
        (WUJIANG.replace("expires_on: 2027-12-31", "expires_on: someday"), "expires_on"),
        (
            WUJIANG.replace("record_id: key_per_partnership", "record_id: keep"),
            "record identifier(s) ['record_id']",
        ),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path, text, where):
    path = tmp_path / "wujiang.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AgreementError) as err:
        load_agreement(path)
    assert str(path) in str(err.value) and where in str(err.value)


def test_agreement_in_force_on_the_real_date(tmp_path):
    from datetime import date

    path = tmp_path / "wujiang.yaml"
    path.write_text(WUJIANG + "revoked_on: 2026-06-01\n", encoding="utf-8")
    agreement = load_agreement(path)
    assert agreement.is_in_force(date(2026, 5, 31)) and not agreement.is_in_force(date(2026, 6, 1))
    assert agreement.ended_why(date(2026, 6, 1)) == "revoked on 2026-06-01"
    assert not agreement.is_in_force(date(2028, 1, 1))


def test_partner_must_match_file_name(tmp_path):
    path = tmp_path / "jiashan.yaml"
    path.write_text(WUJIANG, encoding="utf-8")
    with pytest.raises(AgreementError, match="does not match the file name"):
        load_agreement(path)


def test_pseudonyms_are_keyed_normalised_and_cannot_look_like_pii():
    a, b = b"k" * 32, b"j" * 32
    assert pseudonym(a, "33042119850615001x") == pseudonym(a, " 33042119850615001X")
    assert pseudonym(a, "13912345678") != pseudonym(b, "13912345678")
    value = pseudonymise_value(a, "33042119850615001X;13912345678")
    assert value.count(";") == 1 and all(p.startswith("p_") for p in value.split(";"))
    assert not set(value) & set("0189")
    assert pseudonymise_value(a, None) is None and pseudonymise_value(a, " ; ") is None
