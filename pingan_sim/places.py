"""Where things happen: towns, grids, coordinates, street addresses and the local units that respond.

Towns are drawn in proportion to their grids; coordinates scatter around the real town centres (a few
km), which keeps every clean point well inside the Yangtze River Delta. Road names are synthetic.
"""

from __future__ import annotations

import numpy as np

from pingan_sim.reference import Towns

# Generous box around Shanghai, Jiangsu, Zhejiang and Anhui (lat_min, lat_max, lon_min, lon_max).
DELTA_BBOX = (27.0, 35.5, 114.8, 123.0)

# Points a broken GPS or a careless export produces: far outside the delta whichever box one uses.
OUTSIDE_DELTA = (
    (0.0, 0.0),
    (39.9042, 116.4074),
    (23.1291, 113.2644),
    (30.5728, 104.0668),
    (45.8038, 126.5350),
)

DISTRICT_PREFIX = {
    "310118": "上海市青浦区",
    "320509": "江苏省苏州市吴江区",
    "330421": "浙江省嘉兴市嘉善县",
    "330482": "浙江省嘉兴市平湖市",
    "310116": "上海市金山区",
}
POLICE = {
    "310118": "青浦公安分局",
    "320509": "苏州市公安局吴江分局",
    "330421": "嘉善县公安局",
    "330482": "平湖市公安局",
    "310116": "金山公安分局",
}
ROAD_STEMS = (
    "青安",
    "城中",
    "漕盈",
    "淀湖",
    "华青",
    "崧泽",
    "盈港",
    "公园",
    "胜利",
    "新府",
    "复兴",
    "人民",
    "建设",
    "育才",
    "民主",
    "解放",
    "环城",
    "湖滨",
    "南塘",
    "北港",
    "东星",
    "西园",
    "朝阳",
    "金星",
    "沿河",
    "工业",
    "振兴",
    "跃进",
    "泰安",
    "祥和",
    "汇金",
    "文化",
    "花园",
    "长春",
    "太平",
    "梅园",
    "芦墟",
    "汾湖",
    "枫林",
)
ROAD_SUFFIXES = ("路", "路", "路", "街", "公路", "大道")
VILLAGE_STEMS = (
    "东港",
    "西浜",
    "沈巷",
    "蔡浜",
    "新池",
    "联民",
    "星浜",
    "南湖",
    "双塔",
    "安乐",
    "徐家",
    "钱圩",
)


def town_stem(name: str) -> str:
    """朱家角镇 -> 朱家角, 夏阳街道 -> 夏阳 (how units are named)."""
    for suffix in ("街道", "镇"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def pick_towns(rng: np.random.Generator, towns: Towns, n: int, border_boost: float = 1.0) -> np.ndarray:
    w = towns.weights * np.where(towns.is_border, border_boost, 1.0)
    return rng.choice(len(towns.names), size=n, p=w / w.sum())


def pick_grids(rng: np.random.Generator, towns: Towns, town_idx: np.ndarray) -> np.ndarray:
    offset = (rng.random(len(town_idx)) * towns.grid_count[town_idx]).astype(np.int64)
    return towns.grid_ids[towns.grid_start[town_idx] + offset]


def coords(rng: np.random.Generator, towns: Towns, town_idx: np.ndarray, spread: float = 0.015):
    """(lat, lon) rounded to 6 decimals (about 0.1 m), as GPS-fed dispatch systems store them."""
    n = len(town_idx)
    lat = np.round(towns.lat[town_idx] + rng.normal(0, spread, n), 6)
    lon = np.round(towns.lon[town_idx] + rng.normal(0, spread * 1.15, n), 6)
    return lat, lon


def addresses(
    rng: np.random.Generator, towns: Towns, town_idx: np.ndarray, with_district: bool = True
) -> list[str]:
    n = len(town_idx)
    road = rng.integers(0, len(ROAD_STEMS), n).tolist()
    suffix = rng.integers(0, len(ROAD_SUFFIXES), n).tolist()
    number = rng.integers(1, 1800, n).tolist()
    village = rng.integers(0, len(VILLAGE_STEMS), n).tolist()
    group = rng.integers(1, 16, n).tolist()
    rural = (rng.random(n) < 0.25).tolist()
    prefix = DISTRICT_PREFIX[towns.jurisdiction] if with_district else ""
    out = []
    for t, r, s, no, v, g, is_rural in zip(
        town_idx.tolist(), road, suffix, number, village, group, rural, strict=True
    ):
        town = towns.names[t]
        if is_rural and town.endswith("镇"):
            out.append(f"{prefix}{town}{VILLAGE_STEMS[v]}村{g}组{no % 90 + 1}号")
        else:
            out.append(f"{prefix}{town}{ROAD_STEMS[r]}{ROAD_SUFFIXES[s]}{no}号")
    return out


def police_units(towns: Towns) -> np.ndarray:
    """The police station of each town (index-aligned with towns.names)."""
    return np.array([f"{POLICE[towns.jurisdiction]}{town_stem(t)}派出所" for t in towns.names])


def in_delta(lat, lon) -> np.ndarray:
    lat_min, lat_max, lon_min, lon_max = DELTA_BBOX
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    return (lat >= lat_min) & (lat <= lat_max) & (lon >= lon_min) & (lon <= lon_max)
