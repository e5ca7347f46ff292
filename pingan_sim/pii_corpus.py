"""A labelled corpus for the PII guard: simulated names and identifiers placed in free text, among the real
place and unit names of the reference data, in the disguises people and forms produce.

Each text carries its labels (kind and the exact characters as written), so a scorer can count what the
redaction found, missed and masked wrongly. Half the texts are clean on purpose: dispositions full of town,
checkpoint and unit names whose substrings are the names of people in the same corpus (朱家 and 朱家角镇,
罗星 and 罗星派出所), dates, times, amounts, record ids and USCCs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from stdnum import luhn

from pingan_sim import places
from pingan_sim.identities import mobiles, person_names, resident_ids, usccs
from pingan_sim.reference import load_reference

_CN = dict(zip("0123456789", "〇一二三四五六七八九", strict=True))
_FULL = {c: chr(ord(c) + 0xFEE0) for c in "0123456789-+"}
PLATE_PROVINCES = "沪苏浙皖"
TEMPLATES = (
    "{unit}接报，{name}称其电动车被盗，联系电话{mobile}。",
    "{name}（身份证号{id}）与邻居在{town}发生纠纷，经{unit}调解。",
    "报警人{name}，{mobile}，地址{town}{road}号；已移交{unit}。",
    "当事人{name}银行卡{card}被盗刷，已告知{unit}，座机{landline}。",
    "{town}{checkpoint}查获车辆{plate}，驾驶人{name}，护照{passport}。",
    "回访{name}：满意。另一当事人身份证{id15}（旧证）。",
)
CLEAN = (
    "{unit}出警，现场调解成功，{town}综治中心跟进。",
    "{checkpoint}例行检查，{town}{road}号无异常，编号{uscc}。",
    "{date} 08:15 {unit}接报，损失约{amount}元，已立案{record}。",
    "{town}人民调解委员会与{unit}联合走访，{town}派出所配合。",
)


@dataclass
class Labelled:
    text: str
    labels: list[tuple[str, str]] = field(default_factory=list)  # (kind, span text as written)


def disguise(digits: str, rng: np.random.Generator) -> str:
    """A number as a person or a form may write it."""
    style = int(rng.integers(0, 6))
    if style == 1:
        return "".join(_FULL.get(c, c) for c in digits)
    if style == 2:
        return "".join(_CN.get(c, c) for c in digits)
    if style == 3:
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    if style == 4:
        return "-".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    if style == 5 and len(digits) > 8:
        return digits[: len(digits) // 2] + "\n" + digits[len(digits) // 2 :]
    return digits


def corpus(seed: int, n: int) -> tuple[list[Labelled], set[str]]:
    """n texts (about half with personal data) and the names the hub's PII columns hold for them."""
    rng = np.random.default_rng(seed)
    pools = _pools(rng, n)
    texts = [(_with_pii if i % 2 == 0 else _clean)(rng, pools) for i in range(n)]
    return texts, set(pools["names"]) | {places.town_stem(t)[:2] for t in pools["towns"]}


def _pools(rng: np.random.Generator, n: int) -> dict:
    ref = load_reference()
    towns = [t for ts in ref.towns.values() for t in ts.names]
    units = [u for ts in ref.towns.values() for u in places.police_units(ts).tolist()]
    units += [f"{t}人民调解委员会" for t in towns] + [f"{places.town_stem(t)}派出所" for t in towns]
    return {
        "towns": towns, "units": units, "checkpoints": [c["name"] for c in ref.checkpoints],
        "names": person_names(rng, n),
        "ids": resident_ids(rng, n, 2025).tolist(), "mobiles": mobiles(rng, n).tolist(),
        "usccs": usccs(rng, n, 310118).tolist(),
    }  # fmt: skip


def _card(rng: np.random.Generator) -> str:
    body = "62" + "".join(str(d) for d in rng.integers(0, 10, 15))
    return body + luhn.calc_check_digit(body)


def _named_like_a_place(rng: np.random.Generator, p: dict) -> Labelled:
    """A person whose name is a place's stem (罗星), next to that place (罗星街道, 罗星派出所)."""
    town = p["towns"][int(rng.integers(0, len(p["towns"])))]
    person = places.town_stem(town)[:2]
    text = f"{person}在{town}与邻居发生纠纷，{places.town_stem(town)}派出所出警，{person}已签字。"
    return Labelled(text, [("person_name", person), ("person_name", person)])


def _with_pii(rng: np.random.Generator, p: dict) -> Labelled:
    if rng.random() < 0.1:
        return _named_like_a_place(rng, p)
    template = TEMPLATES[int(rng.integers(0, len(TEMPLATES)))]
    i = int(rng.integers(0, len(p["names"])))
    id15 = p["ids"][i][:6] + p["ids"][i][8:17]
    values = {
        "name": ("person_name", p["names"][i]),
        "mobile": ("mobile", rng.choice(["", "+86 ", "0086-", "86-"]) + disguise(p["mobiles"][i], rng)),
        "id": ("resident_id", disguise(p["ids"][i], rng)),
        "id15": ("resident_id", id15),
        "card": ("bank_card", disguise(_card(rng), rng)),
        "landline": ("landline", f"0{int(rng.integers(21, 999)):d}-{int(rng.integers(2, 10))}{int(rng.integers(0, 10**7)):07d}"),
        "plate": ("licence_plate", f"{rng.choice(list(PLATE_PROVINCES))}{rng.choice(list('ABEFGH'))}{int(rng.integers(10000, 99999))}"),
        "passport": ("passport", f"E{int(rng.integers(10**7, 10**8))}"),
    }  # fmt: skip
    text, labels = template, []
    for key, (kind, value) in values.items():
        if "{" + key + "}" in text:
            text = text.replace("{" + key + "}", value, 1)
            labels.append((kind, value))
    return Labelled(_fill_places(text, rng, p), labels)


def _clean(rng: np.random.Generator, p: dict) -> Labelled:
    template = CLEAN[int(rng.integers(0, len(CLEAN)))]
    day = f"2025-0{int(rng.integers(1, 10))}-{int(rng.integers(10, 29))}"
    text = template.format(
        unit="{unit}", town="{town}", road="{road}", checkpoint="{checkpoint}", date=day,
        uscc=p["usccs"][int(rng.integers(0, len(p["usccs"])))], amount=int(rng.integers(100, 99999)),
        record=f"J3304212025{int(rng.integers(10**8, 10**9))}",
    )  # fmt: skip
    return Labelled(_fill_places(text, rng, p))


def _fill_places(text: str, rng: np.random.Generator, p: dict) -> str:
    for key, pool in (("unit", p["units"]), ("town", p["towns"]), ("checkpoint", p["checkpoints"])):
        while "{" + key + "}" in text:
            text = text.replace("{" + key + "}", pool[int(rng.integers(0, len(pool)))], 1)
    return text.replace("{road}", f"{rng.choice(places.ROAD_STEMS)}路{int(rng.integers(1, 300))}")


@dataclass
class Score:
    found: Counter = field(default_factory=Counter)
    missed: Counter = field(default_factory=Counter)
    wrong: Counter = field(default_factory=Counter)  # masks where no label of that kind was

    def precision(self, kind: str) -> float:
        return self.found[kind] / ((self.found[kind] + self.wrong[kind]) or 1)

    def recall(self, kind: str) -> float:
        return self.found[kind] / ((self.found[kind] + self.missed[kind]) or 1)

    def kinds(self) -> list[str]:
        return sorted(set(self.found) | set(self.missed) | set(self.wrong))


def score(texts: list[Labelled], spans_of) -> Score:
    """`spans_of(text)` gives (kind, span text) pairs; a label counts as found when a span of its kind covers it."""
    result = Score()
    for t in texts:
        spans = list(spans_of(t.text))
        remaining = list(spans)
        for kind, value in t.labels:
            match = next((x for x in remaining if x[0] == kind and (value in x[1] or x[1] in value)), None)
            if match:
                remaining.remove(match)
            (result.found if match else result.missed)[kind] += 1
        for kind, s in spans:
            if not any(k == kind and (v in s or s in v) for k, v in t.labels):
                result.wrong[kind] += 1
    return result
