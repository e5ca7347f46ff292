"""The reference seeds and the identifier generators."""

from __future__ import annotations

import csv
from collections import Counter

import gb2260
import numpy as np
import pytest
from stdnum.cn import ric, uscc

from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan_sim.identities import (
    MOBILE_PREFIXES,
    break_ric_check,
    break_uscc_check,
    mobiles,
    person_names,
    resident_ids,
    usccs,
)
from pingan_sim.reference import SEEDS_DIR, load_reference

# The real towns of each jurisdiction that the simulation must use, and the border towns, written out here.
TOWNS = {
    "310118": {
        "金泽镇",
        "朱家角镇",
        "练塘镇",
        "赵巷镇",
        "徐泾镇",
        "华新镇",
        "重固镇",
        "白鹤镇",
        "夏阳街道",
        "盈浦街道",
        "香花桥街道",
    },
    "320509": {"黎里镇", "震泽镇", "桃源镇", "七都镇", "平望镇", "盛泽镇", "同里镇", "松陵街道"},
    "330421": {
        "罗星街道",
        "魏塘街道",
        "惠民街道",
        "西塘镇",
        "姚庄镇",
        "大云镇",
        "陶庄镇",
        "干窑镇",
        "天凝镇",
    },
    "330482": {"广陈镇", "新埭镇", "新仓镇", "林埭镇", "独山港镇", "当湖街道"},
    "310116": {"廊下镇", "枫泾镇", "吕巷镇", "张堰镇", "亭林镇", "朱泾镇"},
}
BORDER = {"金泽镇", "练塘镇", "朱家角镇", "黎里镇", "桃源镇", "西塘镇", "姚庄镇", "广陈镇", "廊下镇"}
# the harmonised values each entity's codes map onto, written out here independently of pingan.core.canonical
CATEGORIES = {
    "incident": {"criminal", "public_order", "traffic", "assistance", "dispute", "fire", "other"},
    "grid_event_stage": {"dispute", "safety_hazard", "environment", "public_order", "other"},
    "fire_alarm": {"smoke", "heat", "electrical", "water_pressure", "gas", "manual"},
    "joint_operation": {
        "joint_check",
        "joint_management",
        "joint_mediation",
        "joint_patrol",
        "joint_publicity",
    },
}


def rows(name: str) -> list[dict[str, str]]:
    with (SEEDS_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_jurisdictions_are_the_five_real_counties():
    found = {r["jurisdiction_code"]: r for r in rows("ref_jurisdictions.csv")}
    assert set(found) == set(TOWNS)
    for code, r in found.items():
        assert gb2260.get(code).name == r["name_zh"]
    assert [r["role"] for r in found.values()].count("hub") == 1


def test_towns_are_exactly_the_real_names():
    towns = rows("ref_towns.csv")
    by_jur: dict[str, set[str]] = {}
    for t in towns:
        by_jur.setdefault(t["jurisdiction_code"], set()).add(t["town_name"])
        assert t["is_synthetic_code"] == "true"
        assert len(t["town_code"]) == 9 and t["town_code"].startswith(t["jurisdiction_code"])
        assert (t["is_border_town"] == "true") == (t["town_name"] in BORDER)
        assert 30.5 < float(t["centre_lat"]) < 31.4 and 120.3 < float(t["centre_lon"]) < 121.4
    assert by_jur == TOWNS
    assert len({t["town_code"] for t in towns}) == len(towns)


def test_grids_jiashan_has_821_over_its_nine_towns():
    grids = rows("ref_grids.csv")
    assert len({g["grid_id"] for g in grids}) == len(grids)
    per_town = Counter((g["jurisdiction_code"], g["town_name"]) for g in grids)
    assert sum(n for (j, _), n in per_town.items() if j == "330421") == 821
    assert {t for (j, t) in per_town if j == "330421"} == TOWNS["330421"]
    assert {(j, t) for (j, t) in per_town} == {(j, t) for j, ts in TOWNS.items() for t in ts}
    assert all(20 <= n <= 60 for (j, _), n in per_town.items() if j != "330421")


def test_checkpoints_20_land_crossings_and_115_river_mouths_on_the_border():
    cps = rows("ref_checkpoints.csv")
    assert Counter(c["kind"] for c in cps) == {"land_crossing": 20, "river_mouth": 115}
    assert len({c["checkpoint_id"] for c in cps}) == len(cps)
    assert {c["jurisdiction_code"] for c in cps} == {"310118", "320509", "330421"}
    assert all(c["town_name"] in BORDER for c in cps)
    assert all(c["is_synthetic_name"] == "true" for c in cps)


def test_code_mappings_cover_every_harmonised_value_with_several_codes():
    specs = {f: s for f, s in load_specs(PROJECT_ROOT / "connectors").items() if s.code_mapping}
    for feed, spec in specs.items():
        per_cat = Counter(m.category for m in spec.code_mapping.values())
        assert set(per_cat) == CATEGORIES[spec.entity], feed
        if spec.entity != "joint_operation":
            assert min(per_cat.values()) >= 2, feed
    mech = {c: m.category for c, m in specs["pinghu_jinshan_joint_operations"].code_mapping.items()}
    assert mech == {
        "联查": "joint_check",
        "联管": "joint_management",
        "联调": "joint_mediation",
        "联防": "joint_patrol",
        "联宣": "joint_publicity",
    }
    # each jurisdiction has its own code system
    feeds = ("qingpu_110_incidents", "wujiang_incidents", "jiashan_incidents")
    codes = [set(specs[f].code_mapping) for f in feeds]
    assert not (codes[0] & codes[1]) and not (codes[0] & codes[2]) and not (codes[1] & codes[2])


def test_reference_loader_matches_the_files():
    ref = load_reference()
    assert {j: set(t.names) for j, t in ref.towns.items()} == TOWNS
    assert len(ref.towns["330421"].grid_ids) == 821
    specs = load_specs(PROJECT_ROOT / "connectors")
    assert {f: {c.code for c in v} for f, v in ref.mappings.items()} == {
        f: set(s.code_mapping) for f, s in specs.items() if s.code_mapping
    }


@pytest.mark.parametrize("year", [1990, 2024, 2026])
def test_resident_ids_have_valid_check_characters_birth_dates_and_divisions(year):
    ids = resident_ids(np.random.default_rng(year), 6000, year, "310118", minors=0.08).tolist()
    assert all(ric.is_valid(x) for x in ids)
    born = [ric.get_birth_date(x).year for x in ids]
    assert min(born) >= year - 86 and max(born) <= year - 6
    # the current codes of the five jurisdictions, each only for birth years since it exists (stdnum
    # checks that), e.g. 320509 (吴江区, 2012) only on children
    assert {"310118", "320509", "330421", "330482", "310116"} <= {x[:6] for x in ids} or year < 2013
    broken = [break_ric_check(x, k) for x, k in zip(ids[:200], range(1, 201), strict=True) if k % 11]
    assert not any(ric.is_valid(x) for x in broken)


def test_usccs_have_valid_check_characters():
    codes = usccs(np.random.default_rng(1), 5000, 310118).tolist()
    assert all(uscc.is_valid(c) and c[2:8] == "310118" and c[0] == "9" for c in codes)
    assert not any(uscc.is_valid(break_uscc_check(c, 1 + i % 30)) for i, c in enumerate(codes[:300]))


def test_mobiles_and_names_look_real():
    phones = mobiles(np.random.default_rng(2), 5000).tolist()
    assert all(len(p) == 11 and p.isdigit() and int(p[:3]) in set(MOBILE_PREFIXES.tolist()) for p in phones)
    names = person_names(np.random.default_rng(3), 5000)
    assert all(2 <= len(n) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in n) for n in names)
