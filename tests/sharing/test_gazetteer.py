"""Place and unit names are not person names: the guard masks them before it looks for names."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pingan.core.settings import PROJECT_ROOT
from pingan.sharing.gazetteer import PLACEHOLDER, load_gazetteer
from pingan.sharing.pii_guard import scan

GAZETTEER = load_gazetteer(PROJECT_ROOT / "dbt" / "seeds", PROJECT_ROOT / "connectors")


@pytest.mark.parametrize(
    "text, name",
    [
        ("朱家角镇人民调解委员会", "朱家"),  # the demo's night-4 block: a person 朱家 inside the town
        ("青浦公安分局金泽派出所", "金泽"),
        ("嘉善县公安局罗星派出所", "罗星"),
        ("苏州市公安局吴江分局黎里派出所", "吴江"),
        ("金山公安分局廊下派出所", "金山"),
        ("金泽镇—黎里镇省界道口01", "金泽"),
        ("朱家角古镇东侧停车场", "朱家"),
        ("练塘镇人民政府", "练塘"),
    ],
)
def test_a_name_inside_a_place_or_unit_is_not_found(text, name):
    table = pa.table({"event_id": ["k1"], "handling_unit": [text]})
    assert scan(table, person_names={name}, places=GAZETTEER, key_column="event_id") == []
    # without the gazetteer the same text is a finding: the test can fail
    assert scan(table, person_names={name}, key_column="event_id") != []


@pytest.mark.parametrize(
    "text, name",
    [
        ("朱家报警称在朱家角镇被骗", "朱家"),  # the person, then the town
        ("金泽与邻居发生纠纷，金泽镇派出所出警", "金泽"),
        ("当事人罗星（男）已调解", "罗星"),
        ("张伟称其电动车被盗", "张伟"),
        ("联系人：王建国", "王建国"),
    ],
)
def test_a_name_standing_as_a_word_is_still_found_with_its_row_key(text, name):
    table = pa.table({"event_id": ["k1", "k2"], "disposition": ["已处置", text]})
    findings = scan(table, person_names={name}, places=GAZETTEER, key_column="event_id")
    assert [(f.column, f.rule, f.rows, f.keys) for f in findings] == [
        ("disposition", "person_name", 1, ("k2",))
    ]
    assert name not in findings[0].describe("wujiang", "x")


def test_every_reference_town_and_checkpoint_is_masked_whole():
    import csv

    for seed, column in (("ref_towns.csv", "town_name"), ("ref_checkpoints.csv", "name")):
        with (PROJECT_ROOT / "dbt" / "seeds" / seed).open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                masked = GAZETTEER.mask_one(row[column])
                assert PLACEHOLDER in masked, row[column]
                assert not any(
                    "\u4e00" <= ch <= "\u9fff"
                    for ch in masked.replace(PLACEHOLDER, "").replace("省界道口", "")
                ), (row[column], masked)
