"""GB/T 4754-2017 国民经济行业分类: class -> division -> section, and the 纳统 thresholds.

No maintained package carries the standard's code list, so this is the one reference table the
project writes by hand, kept as small as the standard allows: a 4-digit class code is
division (2 digits) + group + class, and the 20 sections (门类 A-T) are contiguous ranges of
the 97 divisions (大类 01-97). The ranges and section names below are those of GB/T 4754-2017
(2019 amendment unchanged at this level): each section's "本门类包括 NN～MM 大类".
Class and division names are not kept (no packaged source; a hand-typed list of ~1,400 names
would be a second, unchecked copy of the standard).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple


class Section(NamedTuple):
    code: str  # 门类代码 A-T
    first: int  # first division (大类) of the section
    last: int  # last division, inclusive
    name: str  # 门类名称


# GB/T 4754-2017, table 5 (国民经济行业分类和代码表), section level.
SECTIONS: tuple[Section, ...] = (
    Section("A", 1, 5, "农、林、牧、渔业"),
    Section("B", 6, 12, "采矿业"),
    Section("C", 13, 43, "制造业"),
    Section("D", 44, 46, "电力、热力、燃气及水生产和供应业"),
    Section("E", 47, 50, "建筑业"),
    Section("F", 51, 52, "批发和零售业"),
    Section("G", 53, 60, "交通运输、仓储和邮政业"),
    Section("H", 61, 62, "住宿和餐饮业"),
    Section("I", 63, 65, "信息传输、软件和信息技术服务业"),
    Section("J", 66, 69, "金融业"),
    Section("K", 70, 70, "房地产业"),
    Section("L", 71, 72, "租赁和商务服务业"),
    Section("M", 73, 75, "科学研究和技术服务业"),
    Section("N", 76, 79, "水利、环境和公共设施管理业"),
    Section("O", 80, 82, "居民服务、修理和其他服务业"),
    Section("P", 83, 83, "教育"),
    Section("Q", 84, 85, "卫生和社会工作"),
    Section("R", 86, 90, "文化、体育和娱乐业"),
    Section("S", 91, 96, "公共管理、社会保障和社会组织"),
    Section("T", 97, 97, "国际组织"),
)
FIRST_DIVISION, LAST_DIVISION = SECTIONS[0].first, SECTIONS[-1].last
SECTION_NAMES = {s.code: s.name for s in SECTIONS}
DIVISION_SECTION = {f"{d:02d}": s.code for s in SECTIONS for d in range(s.first, s.last + 1)}


class Inclusion(NamedTuple):
    category: str  # 纳统 category: 规上工业, 限上批发, ...
    threshold_yuan: Decimal  # annual main business revenue from which it is in statistics


def _wan(amount: int) -> Decimal:
    return Decimal(amount * 10_000)


INDUSTRY = Inclusion("规上工业", _wan(2000))
SERVICES_2000 = Inclusion("规上服务业", _wan(2000))
SERVICES_1000 = Inclusion("规上服务业", _wan(1000))
SERVICES_500 = Inclusion("规上服务业", _wan(500))

# 纳统 thresholds as source-feeds.md states them ("Statistical thresholds the cockpit uses").
# By section, then division, then class: the most specific entry wins. The spec is followed
# where it is coarser than 国家统计局's current list (which puts L, M and P at 1000 万, 卫生 84
# at 2000 万 and only 社会工作 85 at 500 万): changing a threshold is a change of the spec.
INCLUSION_BY_SECTION: dict[str, Inclusion] = {
    "B": INDUSTRY,
    "C": INDUSTRY,
    "D": INDUSTRY,
    "G": SERVICES_2000,  # 交通运输、仓储和邮政业
    "I": SERVICES_2000,  # 信息传输、软件和信息技术服务业
    "L": SERVICES_2000,  # 租赁和商务服务业
    "M": SERVICES_2000,  # 科学研究和技术服务业
    "N": SERVICES_2000,  # 水利、环境和公共设施管理业
    "P": SERVICES_2000,  # 教育
    "O": SERVICES_500,  # 居民服务、修理和其他服务业
    "Q": SERVICES_500,  # 卫生和社会工作
    "R": SERVICES_500,  # 文化、体育和娱乐业
}
INCLUSION_BY_DIVISION: dict[str, Inclusion] = {
    "51": Inclusion("限上批发", _wan(2000)),
    "52": Inclusion("限上零售", _wan(500)),
    "61": Inclusion("限上住宿", _wan(200)),
    "62": Inclusion("限上餐饮", _wan(200)),
}
# Real estate (K) is in statistics class by class: 房地产开发经营 (7010) has its own survey of
# every developer, not a revenue threshold. The spec's "其他营利性服务" at 1000 万 is read as the
# fourth class of the national standard's 1000 万 tier, 7090 其他房地产业: every other section
# the spec names is already placed above, and the national list of that tier is exactly
# 物业管理, 房地产中介服务, 房地产租赁经营 (the spec's 自有房地产经营) and 其他房地产业.
INCLUSION_BY_CLASS: dict[str, Inclusion] = {
    "7020": SERVICES_1000,  # 物业管理
    "7030": SERVICES_1000,  # 房地产中介服务
    "7040": SERVICES_1000,  # 房地产租赁经营 (GB/T 4754-2011: 自有房地产经营活动)
    "7090": SERVICES_1000,  # 其他房地产业 (the spec's 其他营利性服务, see above)
}
# Sections A, E, J, S, T and 7010 have no revenue threshold in the spec: such an enterprise is
# never an inclusion candidate by revenue (agriculture, construction and developers are
# surveyed by qualification; finance and public bodies are outside these surveys).


def division_of(industry_code: str) -> str:
    return industry_code[:2]


def section_of(industry_code: str) -> str | None:
    """The section letter of a 4-digit class (None when its division is not in the standard)."""
    return DIVISION_SECTION.get(division_of(industry_code))


def inclusion_of(industry_code: str) -> Inclusion | None:
    """The 纳统 category and threshold of a class, None when revenue does not decide it."""
    section = section_of(industry_code)
    if section is None:
        return None
    return (
        INCLUSION_BY_CLASS.get(industry_code)
        or INCLUSION_BY_DIVISION.get(division_of(industry_code))
        or INCLUSION_BY_SECTION.get(section)
    )
