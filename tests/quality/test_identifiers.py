"""The identifier checks the custom expectations are built on (plain Python, no GX)."""

from __future__ import annotations

import random

import pytest
from quality_factories import resident_id, uscc_code
from stdnum.cn import ric

from pingan.quality import identifiers as ids


def test_resident_id_accepts_valid_numbers():
    assert ids.is_resident_id(resident_id())
    assert ids.is_resident_id(resident_id("320509", "20010228"))
    check_x = next(
        resident_id(seq=f"{s:03d}") for s in range(1000) if resident_id(seq=f"{s:03d}").endswith("X")
    )
    assert ids.is_resident_id(check_x)
    assert ids.is_resident_id(check_x.lower())  # stdnum's compact form upper-cases the check character


def test_resident_id_keeps_codes_renamed_after_birth():
    # 310118 (青浦区) exists since 1999; stdnum's birth-year rule would reject this real-world shape
    number = resident_id("310118", "19800101")
    assert not ric.is_valid(number)
    assert ids.is_resident_id(number)


@pytest.mark.parametrize(
    "number",
    [
        resident_id()[:-1] + ("0" if resident_id()[-1] != "0" else "1"),  # wrong check character
        resident_id(born="19850230"),  # no such day
        resident_id(born="21850101"),  # born in the future
        resident_id(division="999999"),  # no such division
        resident_id()[:17],  # too short
        "31011819850612A23X",  # letters in the body
        "",
    ],
)
def test_resident_id_rejects(number):
    assert not ids.is_resident_id(number)


def test_resident_id_mask_agrees_with_the_scalar_check():
    rng = random.Random(5)
    cells = []
    for i in range(3000):
        number = resident_id(
            rng.choice(["310118", "330421", "310229", "999999"]),
            f"19{rng.randint(10, 99)}0{rng.randint(1, 9)}2{rng.randint(0, 9)}",
            f"{i % 1000:03d}",
        )
        roll = rng.random()
        if roll < 0.1:
            number = number[:-1] + rng.choice("0123456789X")
        elif roll < 0.15:
            number = number.lower() if number.endswith("X") else f" {number}"
        elif roll < 0.2:
            number = f"{number};{resident_id()}"
        elif roll < 0.22:
            number = f"{number};;"
        elif roll < 0.25:
            number = number[:10] + "13" + number[12:]
        cells.append(number)
    expected = [all(ids.is_resident_id(x) for x in ids.split_list(c, ";")) for c in cells]
    assert ids.resident_id_mask(cells, ";").tolist() == expected
    assert 0 < sum(expected) < len(cells)


def test_uscc():
    assert ids.is_uscc(uscc_code())
    assert not ids.is_uscc(uscc_code()[:-1] + ("0" if uscc_code()[-1] != "0" else "1"))
    assert not ids.is_uscc("91310118MA1FL000")


@pytest.mark.parametrize(
    "phone,ok",
    [
        ("13812345678", True),
        ("19912345678", True),
        ("12812345678", False),
        ("1381234567", False),
        ("+8613812345678", False),
        ("138 1234 5678", False),
    ],
)
def test_mobile(phone, ok):
    assert ids.is_mobile(phone) is ok


def test_division_codes():
    for code in ("310118", "320509", "330421", "330482", "310116"):
        assert ids.is_division_code(code, level="county")
    assert ids.is_division_code("310000", level="province")
    assert ids.is_division_code("320500", level="prefecture")
    assert not ids.is_division_code("320500", level="county")
    assert not ids.is_division_code("999999")
    assert not ids.is_division_code("31011")
    assert not ids.is_division_code("320584")  # 吴江市 became 吴江区 320509 in 2012
    assert ids.is_division_code("320584", latest_only=False)
    with pytest.raises(ValueError):
        ids.is_division_code("310118", level="town")


def test_known_birth_places_match_stdnum_lookup():
    from gb2260.data import data
    from stdnum import numdb

    def stdnum_knows(code: str) -> bool:
        return any("county" in props for _, props in numdb.get("cn/loc").info(code))

    places = ids.known_birth_places()
    rng = random.Random(9)
    sample = {f"{c:06d}" for rev in data.values() for c in list(rev)[:300]} | {
        f"{rng.randint(0, 999_999):06d}" for _ in range(2000)
    }
    assert {c for c in sample if stdnum_knows(c)} == sample & places
    assert {"310118", "310229", "320584"} <= places and "999999" not in places
