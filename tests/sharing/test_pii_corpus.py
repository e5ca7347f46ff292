"""Redaction measured on the labelled corpus, and on disguises written by hand."""

from __future__ import annotations

import pytest
from stdnum import luhn
from stdnum.cn import ric

from pingan.core.settings import PROJECT_ROOT
from pingan.sharing.detectors import MASKS, find_identifiers
from pingan.sharing.gazetteer import load_gazetteer
from pingan.sharing.redact import personal_spans, redact_text
from pingan_sim.pii_corpus import corpus, score

GAZETTEER = load_gazetteer(PROJECT_ROOT / "dbt" / "seeds", PROJECT_ROOT / "connectors")
ID18 = "33042119850615001" + ric.calc_check_digit("330421198506150010")
CARD = "622202020011223344" + luhn.calc_check_digit("622202020011223344")


def test_every_identifier_type_at_full_recall_and_names_at_99_percent():
    texts, names = corpus(31, 3000)
    names = frozenset(names)

    def spans(text):
        return [(s.kind, text[s.start : s.end]) for s in personal_spans(text, names, GAZETTEER)]

    result = score(texts, spans)
    assert set(result.kinds()) >= set(MASKS)
    for kind in MASKS:
        floor = 0.99 if kind == "person_name" else 1.0
        assert result.recall(kind) >= floor, (kind, result.found[kind], result.missed[kind])
        assert result.precision(kind) >= 0.99, (kind, result.found[kind], result.wrong[kind])


@pytest.mark.parametrize(
    "text, kind",
    [
        ("回电１３９１２３４５６７８", "mobile"),
        ("手机一三九一二三四五六七八", "mobile"),
        ("手机幺三九", None),  # not a number: too short, and 幺 is not read as a digit
        ("+86 (0)139 1234 5678"[:0] + "+86 139 1234\n5678", "mobile"),
        ("0086-139.1234.5678", "mobile"),
        (f"身份证{ID18[:6]} {ID18[6:14]} {ID18[14:]}", "resident_id"),
        (f"身份证{ID18[:-1]}x", None if ID18[-1] != "X" else "resident_id"),  # a wrong check character
        ("旧身份证330421850615001", "resident_id"),
        (f"银行卡号{CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:16]} {CARD[16:]}", "bank_card"),
        ("座机(021)5973-1234", "landline"),
        ("护照号G12345678", "passport"),
        ("车牌号苏E·12345", "licence_plate"),
        ("统一社会信用代码91310118MA1K7X3B2Q", None),
        ("2025-03-01 08:15:00 接报", None),
        ("记录J33042120250301000123", None),
    ],
)
def test_disguises_written_by_hand(text, kind):
    found = {s.kind for s in find_identifiers(text)}
    assert found == ({kind} if kind else set()), found
    if kind:
        assert MASKS[kind] in redact_text(text)[0]


def test_names_are_masked_as_words_places_stay():
    text = "罗星与朱家在朱家角镇争吵，罗星派出所出警；苏州市公安局吴江分局协查，吴江到场。"
    redacted, counts = redact_text(text, {"罗星", "朱家", "吴江"}, GAZETTEER)
    assert (
        redacted
        == "〔姓名〕与〔姓名〕在朱家角镇争吵，罗星派出所出警；苏州市公安局吴江分局协查，〔姓名〕到场。"
    )
    assert counts == {"person_name": 3}
