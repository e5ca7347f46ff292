"""Identifiers and people: resident ID numbers, USCCs, mobiles and Chinese names, generated in bulk.

Everything is built as digit matrices in numpy and turned into strings in one step, because a day of
110 calls needs thousands of them and per-item Python would dominate the run time. Check characters
follow the standards (GB 11643 MOD 11-2, GB 32100 MOD 31, GB 11714 for the organisation code inside a
USCC); the tests hold them to python-stdnum.
"""

from __future__ import annotations

import numpy as np

# --- resident ID numbers (GB 11643) ------------------------------------------------------------------

# Where people's IDs were issued, with every code the place had over time: an ID carries the division
# code in force when it was first issued, and stdnum (like the police checks) accepts a code only for
# birth years when it existed, e.g. Qingpu was 青浦县 310209 → 310229 → 青浦区 310118 in 1999.
# (place, weight, [(code, first year, last year)]), years inclusive, None = open; source: stdnum cn/loc.dat.
PLACES: list[tuple[str, float, list[tuple[int, int | None, int | None]]]] = [
    ("青浦", 14, [(310209, None, 1982), (310229, 1982, 1999), (310118, 1999, None)]),
    ("吴江", 14, [(322728, None, 1983), (320525, 1983, 1992), (320584, 1992, 2012), (320509, 2012, None)]),
    ("嘉善", 14, [(332122, None, 1983), (330421, 1983, None)]),
    ("平湖", 5, [(332123, None, 1983), (330422, 1983, 1991), (330482, 1991, None)]),
    ("金山", 5, [(310208, None, 1982), (310228, 1982, 1997), (310116, 1997, None)]),
    ("松江", 4, [(310207, None, 1982), (310227, 1982, 1998), (310117, 1998, None)]),
    ("昆山", 4, [(322726, None, 1983), (320523, 1983, 1989), (320583, 1989, None)]),
    ("徐汇", 3, [(310104, None, None)]),
    ("桐乡", 2, [(332126, None, 1983), (330425, 1983, 1993), (330483, 1993, None)]),
    ("海盐", 2, [(332125, None, 1983), (330424, 1983, None)]),
    ("射阳", 2, [(322324, None, 1983), (320924, 1983, None)]),
    (
        "兴化",
        2,
        [
            (322421, None, 1983),
            (321021, 1983, 1987),
            (329009, 1987, 1989),
            (321083, 1989, 1996),
            (321281, 1996, None),
        ],
    ),
    ("睢宁", 2, [(322124, None, 1983), (320324, 1983, None)]),
    ("临泉", 3, [(342122, None, 1996), (341221, 1996, None)]),
    ("太和", 3, [(342123, None, 1996), (341222, 1996, None)]),
    ("阜南", 2, [(342127, None, 1996), (341225, 1996, None)]),
    ("霍邱", 2, [(342423, None, 1999), (341522, 1999, None)]),
    ("宿松", 2, [(342826, None, 1988), (340826, 1988, None)]),
    ("固始", 2, [(413026, None, 1998), (411525, 1998, None)]),
    ("南部", 1, [(512922, None, 1993), (511321, 1993, None)]),
]
# A jurisdiction's own residents are over-represented among its callers and parties.
LOCAL_PLACE = {"310118": "青浦", "320509": "吴江", "330421": "嘉善", "330482": "平湖", "310116": "金山"}
FIRST_YEAR = 1900
LAST_YEAR = 2100


def _code_by_year() -> np.ndarray:
    table = np.zeros((len(PLACES), LAST_YEAR - FIRST_YEAR + 1), dtype=np.int64)
    for p, (_, _, codes) in enumerate(PLACES):
        for code, first, last in codes:  # later codes win where ranges overlap by a year
            lo = (first or FIRST_YEAR) - FIRST_YEAR
            hi = (last or LAST_YEAR) - FIRST_YEAR
            table[p, lo : hi + 1] = code
    return table


_CODE_BY_YEAR = _code_by_year()
_RIC_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_RIC_CHECK = np.frombuffer(b"0123456789X", dtype=np.uint8)
_DIGIT = np.uint8(ord("0"))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n,) non-negative ints -> (n, width) decimal digits, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values.astype(np.int64)[:, None] // powers) % 10


def ascii_rows(codes: np.ndarray) -> np.ndarray:
    """(n, k) byte values -> (n,) unicode strings of length k, without a Python loop."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, k = codes.shape
    return codes.view(f"S{k}").reshape(n).astype(f"U{k}")


def place_weights(jurisdiction: str | None) -> np.ndarray:
    w = np.array([p[1] for p in PLACES], dtype=float)
    if jurisdiction in LOCAL_PLACE:
        w[[p[0] for p in PLACES].index(LOCAL_PLACE[jurisdiction])] *= 4
    return w / w.sum()


def birth_dates(rng: np.random.Generator, n: int, year: int, minors: float = 0.0) -> np.ndarray:
    """Birth dates (datetime64[D]) of people seen in `year`: adults centred on forty, and a share of
    children aged 6-17 (missing children, pupils in a dispute)."""
    ages = np.clip(rng.normal(40, 14, n), 18, 85).astype(np.int64)
    young = rng.random(n) < minors
    ages[young] = rng.integers(6, 18, int(young.sum()))
    years = (year - ages - 1970).astype("datetime64[Y]")
    first = years.astype("datetime64[D]")
    length = ((years + 1).astype("datetime64[D]") - first).astype(np.int64)
    return first + (rng.random(n) * length).astype(np.int64)


def resident_ids(
    rng: np.random.Generator, n: int, year: int, jurisdiction: str | None = None, minors: float = 0.0
) -> np.ndarray:
    """n valid 18-character resident ID numbers of people seen in `year`.

    Only people born since 2012 can hold Wujiang's current code 320509 (吴江市 became 吴江区 that
    year), so it shows up among the children."""
    if n == 0:
        return np.array([], dtype="U18")
    born = birth_dates(rng, n, year, minors)
    y = born.astype("datetime64[Y]").astype(np.int64) + 1970
    m = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
    d = (born - born.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    place = rng.choice(len(PLACES), size=n, p=place_weights(jurisdiction))
    division = _CODE_BY_YEAR[place, y - FIRST_YEAR]
    seq = rng.integers(1, 1000, n)
    body = np.concatenate(
        [_digits(division, 6), _digits(y, 4), _digits(m, 2), _digits(d, 2), _digits(seq, 3)], axis=1
    )
    check = _RIC_CHECK[(12 - (body @ _RIC_WEIGHTS) % 11) % 11]
    return ascii_rows(np.concatenate([body.astype(np.uint8) + _DIGIT, check[:, None]], axis=1))


def break_ric_check(number: str, shift: int) -> str:
    """The same ID with a different (so wrong) check character; shift in 1..10."""
    i = b"0123456789X".index(number[-1].encode())
    return number[:-1] + "0123456789X"[(i + shift) % 11]


# --- unified social credit codes (GB 32100) ----------------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
_USCC_BYTES = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
# GB 11714 (organisation code) reads letters as A=10 .. Z=35, unlike the USCC alphabet's own indexes.
_ORG_VALUE = np.array([int(c, 36) for c in USCC_ALPHABET], dtype=np.int64)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_M, _A = USCC_ALPHABET.index("M"), USCC_ALPHABET.index("A")
_X = USCC_ALPHABET.index("X")


def usccs(rng: np.random.Generator, n: int, division: int) -> np.ndarray:
    """n distinct-in-practice USCCs registered in `division` (91 companies, 92 sole traders, 93 co-ops)."""
    if n == 0:
        return np.array([], dtype="U18")
    kind = rng.choice(np.array([1, 2, 3]), size=n, p=[0.86, 0.10, 0.04])
    head = np.stack([np.full(n, 9), kind], axis=1)
    # organisation code: newer registrations use the MA... series, older ones eight digits
    org = rng.integers(0, 10, (n, 8))
    new = rng.random(n) < 0.6
    org[new, 0], org[new, 1] = _M, _A
    org[new, 2:] = rng.integers(0, len(USCC_ALPHABET), (int(new.sum()), 6))
    org_check = 11 - (_ORG_VALUE[org] @ _ORG_WEIGHTS) % 11
    org_check = np.where(org_check == 10, _X, np.where(org_check == 11, 0, org_check))
    body = np.concatenate([head, _digits(np.full(n, division), 6), org, org_check[:, None]], axis=1)
    check = (31 - (body @ _USCC_WEIGHTS) % 31) % 31
    return ascii_rows(_USCC_BYTES[np.concatenate([body, check[:, None]], axis=1)])


def break_uscc_check(code: str, shift: int) -> str:
    """The same USCC with a different (so wrong) check character; shift in 1..30."""
    i = USCC_ALPHABET.index(code[-1])
    return code[:-1] + USCC_ALPHABET[(i + shift) % 31]


# --- mobiles and names -------------------------------------------------------------------------------

MOBILE_PREFIXES = np.array(
    [
        130,
        131,
        132,
        133,
        134,
        135,
        136,
        137,
        138,
        139,
        150,
        151,
        152,
        153,
        155,
        156,
        157,
        158,
        159,
        166,
        173,
        177,
        180,
        181,
        182,
        183,
        185,
        186,
        187,
        188,
        189,
        191,
        198,
        199,
    ]
)


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = rng.choice(MOBILE_PREFIXES, size=n)
    number = prefix.astype(np.int64) * 100_000_000 + rng.integers(0, 100_000_000, n)
    return ascii_rows(_digits(number, 11).astype(np.uint8) + _DIGIT)


# The commonest surnames with rough frequency weights, and characters common in given names.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤"
)
_SURNAME_WEIGHTS = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8
_SURNAME_WEIGHTS /= _SURNAME_WEIGHTS.sum()
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力永健世广志义兴良海山仁波宁贵福生龙元全国"
    "胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功"
    "松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时"
    "泰盛雄琛钧冠策腾楠榕风航弘佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷"
)


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    surname = rng.choice(len(SURNAMES), size=n, p=_SURNAME_WEIGHTS)
    first = rng.integers(0, len(GIVEN), n)
    second = rng.integers(0, len(GIVEN), n)
    single = rng.random(n) < 0.25  # about a quarter of given names are one character
    return [
        SURNAMES[s] + GIVEN[a] + ("" if one else GIVEN[b])
        for s, a, b, one in zip(
            surname.tolist(), first.tolist(), second.tolist(), single.tolist(), strict=True
        )
    ]
