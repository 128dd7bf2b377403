"""Dirty rows planted at set rates in the city's feeds, with exact counts of what was planted.

Two families (source-feeds.md, "Rules every feed obeys"):

- rejected downstream (quarantined with a reason): `bad_check` (wrong USCC or 身份证 check
  character), `unknown_code` (district, MCC, fuel product or platform outside its code list),
  `negative_amount`, `bad_date` (unparsable date or time), `missing_key`;
- normalised downstream (unambiguous producer quirks, loaded after cleaning): `fullwidth`
  (full-width digits and letters), `stray_spaces` (leading/trailing ASCII or ideographic
  spaces), `alt_date` (`2024/1/5 9:05:03`, `2024年1月5日 9:05:03`), `yuan_text` (`¥1,234.50`,
  `￥1,234.50`, `1,234.50` in *_yuan fields), `lowercase_check` (lower-case check character).

A row carries at most one kind; a row that cannot carry the drawn kind (no USCC, a digit check
character) stays clean, so realised counts, not rates, are the truth. pay_transactions keeps its
own `DirtyRates` (payment.py).

Where a lost row would corrupt other facts, rejected kinds go on an *extra* copy of a real row
with its own identity instead of on the row itself: registries (a quarantined merchant or
enterprise would orphan its transactions and filings) and the fuel feeds (a quarantined sale or
reading would fake an inventory gap). Leaf feeds (tax, social insurance, settlements, orders)
lose the dirty row itself, as in real life.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

from pipelines.generator.codes import (
    FULLWIDTH_ALNUM,
    USCC_ALPHABET,
    unknown_district,
    unknown_mcc,
    wrong_check,
)
from pipelines.generator.files import feed_columns
from pipelines.generator.payment import BAD_TIMES, DirtyRates

REJECTED_KINDS = ("bad_check", "unknown_code", "negative_amount", "bad_date", "missing_key")
NORMALISED_KINDS = ("fullwidth", "stray_spaces", "alt_date", "yuan_text", "lowercase_check")
KINDS = REJECTED_KINDS + NORMALISED_KINDS
BAD_DATES = ("{y}-02-30", "{y}-13-01", "{y}/{m}/32", "去年", "0000-00-00", "{y}年13月1日")
UNKNOWN_PRODUCTS = ("93", "97", "-20D")  # old grades and a diesel the standard does not list
UNKNOWN_PLATFORMS = ("douyin", "eleme", "kuaishou")
_SPACES = (" ", "  ", "\u3000")
_RIC_ALPHABET = "0123456789X"


@dataclass(frozen=True)
class FeedDirt:
    """Shares of a feed's rows that carry each planted kind (at most one per row)."""

    bad_check: float = 0.001
    unknown_code: float = 0.001
    negative_amount: float = 0.001
    bad_date: float = 0.001
    missing_key: float = 0.001
    fullwidth: float = 0.004
    stray_spaces: float = 0.004
    alt_date: float = 0.004
    yuan_text: float = 0.004
    lowercase_check: float = 0.004

    def scaled(self, factor: float) -> FeedDirt:
        """All rates multiplied by `factor` (0 gives clean rows)."""
        return FeedDirt(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


@dataclass(frozen=True)
class FeedShape:
    """Which columns of a feed each kind goes on."""

    key: str  # emptied by missing_key
    time: str  # the date or time that bad_date and alt_date rewrite
    time_is_date: bool = False
    checks: tuple[tuple[str, str], ...] = ()  # (column, "uscc" | "ric")
    codes: tuple[tuple[str, str], ...] = ()  # (column, "district" | "mcc" | "product" | ...)
    amounts: tuple[str, ...] = ()  # negated together by negative_amount
    yuan: tuple[str, ...] = ()
    fold: tuple[str, ...] = ()  # where full-width characters and stray spaces go
    extra: bool = False  # rejected kinds on extra copies (see the module doc)


_TAX_AMOUNTS = ("sales_revenue_yuan", "vat_yuan", "cit_yuan", "total_tax_yuan")
SHAPES: dict[str, FeedShape] = {
    "gov_enterprise_registry": FeedShape(
        key="uscc",
        time="established_date",
        time_is_date=True,
        checks=(("uscc", "uscc"), ("legal_rep_id", "ric")),
        codes=(("district_code", "district"),),
        amounts=("reg_capital_wan",),
        fold=("uscc", "reg_capital_wan", "established_date", "industry_code", "district_code"),
        extra=True,
    ),
    "gov_tax_monthly": FeedShape(
        key="uscc",
        time="updated_at",
        checks=(("uscc", "uscc"),),
        amounts=_TAX_AMOUNTS,
        yuan=_TAX_AMOUNTS,
        fold=("uscc", "period", "sales_revenue_yuan", "updated_at"),
    ),
    "gov_social_insurance": FeedShape(
        key="uscc",
        time="updated_at",
        checks=(("uscc", "uscc"),),
        amounts=("insured_headcount",),
        fold=("uscc", "period", "insured_headcount", "updated_at"),
    ),
    "merchant_registry": FeedShape(
        key="merchant_id",
        time="opened_date",
        time_is_date=True,
        checks=(("uscc", "uscc"),),
        codes=(("mcc", "mcc"), ("district_code", "district")),
        fold=("merchant_id", "uscc", "mcc", "district_code", "opened_date"),
        extra=True,
    ),
    "pay_settlements": FeedShape(
        key="merchant_id",
        time="settle_date",
        time_is_date=True,
        amounts=("gross_fen", "net_fen"),
        fold=("merchant_id", "settle_date", "gross_fen", "fee_fen", "net_fen", "settle_bank_code"),
    ),
    "merchant_orders": FeedShape(
        key="order_id",
        time="order_time",
        codes=(("platform", "platform"),),
        amounts=("gmv_fen",),
        fold=("order_id", "merchant_id", "order_time", "gmv_fen", "commission_fen", "status"),
    ),
    "fuel_stations": FeedShape(
        key="station_id",
        time="updated_at",
        checks=(("uscc", "uscc"),),
        codes=(("district_code", "district"),),
        fold=("station_id", "uscc", "district_code", "lat", "lon", "updated_at"),
        extra=True,
    ),
    "fuel_sales": FeedShape(
        key="sale_id",
        time="sale_time",
        codes=(("product_code", "product"),),
        amounts=("liters", "amount_yuan"),  # a test dispense returned to the tank (回罐)
        yuan=("unit_price_yuan", "amount_yuan"),
        fold=("sale_id", "station_id", "nozzle_id", "liters", "sale_time"),
        extra=True,
    ),
    "fuel_deliveries": FeedShape(
        key="delivery_id",
        time="delivery_time",
        checks=(("supplier_uscc", "uscc"),),
        codes=(("product_code", "product"),),
        amounts=("liters",),
        fold=("delivery_id", "station_id", "liters", "supplier_uscc", "delivery_time"),
        extra=True,
    ),
    "fuel_tank_readings": FeedShape(
        key="tank_id",
        time="reading_time",
        codes=(("product_code", "product"),),
        amounts=("volume_liters",),
        fold=("station_id", "tank_id", "volume_liters", "reading_time"),
        extra=True,
    ),
}


@dataclass(frozen=True)
class CityDirt:
    """Planted-dirt rates of every feed of a city run.

    `payment` drives pay_transactions (and is what `generate_payment` uses); `feeds` holds a
    FeedDirt per other feed (missing feeds are clean).
    """

    payment: DirtyRates = field(default_factory=DirtyRates)
    feeds: tuple[tuple[str, FeedDirt], ...] = field(
        default_factory=lambda: tuple((feed, FeedDirt()) for feed in SHAPES)
    )

    def for_feed(self, feed: str) -> FeedDirt:
        return dict(self.feeds).get(feed, FeedDirt().scaled(0))

    def with_feed(self, feed: str, rates: FeedDirt) -> CityDirt:
        """The same rates, except `feed`'s."""
        others = tuple((f, r) for f, r in self.feeds if f != feed)
        return replace(self, feeds=(*others, (feed, rates)))

    def scaled(self, factor: float) -> CityDirt:
        """Every rate multiplied by `factor` (0 gives clean data, refunds and reversals aside:
        those are payment-flow facts of DirtyRates and scale with it too)."""
        return CityDirt(
            payment=self.payment.scaled(factor),
            feeds=tuple((f, r.scaled(factor)) for f, r in self.feeds),
        )


DEFAULT_DIRT = CityDirt()  # frozen, so one shared default is safe


@dataclass
class Planted:
    """A feed's rows after planting, and what was planted where."""

    rows: list[list[str]]
    kinds: dict[int, str]  # index into rows -> planted kind
    counts: dict[str, int]  # kind -> rows; plus "rows" (all) and "extra" (copies added)


Renew = Callable[[list[str], random.Random], None]


def plant(
    feed: str,
    rows: Sequence[list[str]],
    rates: FeedDirt,
    rng: random.Random,
    *,
    renew: Renew | None = None,
    protected: frozenset[str] | set[str] = frozenset(),
) -> Planted:
    """Plant `rates`' kinds into `rows` (mutated) of `feed`.

    `renew` gives an extra copy its own identity (a new key) before its defect is planted;
    rows whose key column value is in `protected` never get a rejected kind (the planted
    near-threshold enterprises keep exact filings).
    """
    shape = SHAPES[feed]
    columns = feed_columns(feed)
    ix = {name: i for i, name in enumerate(columns)}
    applicable = {
        "bad_check": bool(shape.checks),
        "lowercase_check": bool(shape.checks),
        "unknown_code": bool(shape.codes),
        "negative_amount": bool(shape.amounts),
        "yuan_text": bool(shape.yuan),
    }
    thresholds: list[tuple[float, str]] = []
    total = 0.0
    for kind in KINDS:
        rate = getattr(rates, kind)
        if rate > 0 and applicable.get(kind, True):
            total += rate
            thresholds.append((total, kind))
    counts = dict.fromkeys(("rows", "extra", *KINDS), 0)
    out: list[list[str]] = []
    kinds: dict[int, str] = {}
    key = ix[shape.key]
    rand = rng.random
    for row in rows:
        u = rand()
        if u >= total:  # the common case: a clean row
            out.append(row)
            continue
        kind = next(k for t, k in thresholds if u < t)
        rejected = kind in REJECTED_KINDS
        if rejected and row[key] in protected:
            out.append(row)
            continue
        target = row
        if rejected and shape.extra:
            out.append(row)
            target = list(row)
            if renew is not None:
                renew(target, rng)
        if _apply(kind, target, shape, ix, rng):
            if target is not row:
                counts["extra"] += 1
            out.append(target)
            kinds[len(out) - 1] = kind
            counts[kind] += 1
        elif target is row:
            out.append(row)
    counts["rows"] = len(out)
    return Planted(out, kinds, counts)


def _apply(
    kind: str, row: list[str], shape: FeedShape, ix: dict[str, int], rng: random.Random
) -> bool:
    """Plant `kind` into `row`; False when the row cannot carry it."""
    if kind == "bad_check" or kind == "lowercase_check":
        for column, what in shape.checks:
            value = row[ix[column]]
            if not value:
                continue
            if kind == "bad_check":
                alphabet = USCC_ALPHABET if what == "uscc" else _RIC_ALPHABET
                row[ix[column]] = wrong_check(value, alphabet, rng)
                return True
            if value[-1].isalpha():
                row[ix[column]] = value[:-1] + value[-1].lower()
                return True
        return False
    if kind == "unknown_code":
        column, what = rng.choice(shape.codes)
        row[ix[column]] = {
            "district": lambda: unknown_district(rng),
            "mcc": lambda: unknown_mcc(rng),
            "product": lambda: rng.choice(UNKNOWN_PRODUCTS),
            "platform": lambda: rng.choice(UNKNOWN_PLATFORMS),
        }[what]()
        return True
    if kind == "negative_amount":
        for column in shape.amounts:
            if row[ix[column]]:
                row[ix[column]] = "-" + row[ix[column]]
        return True
    if kind == "missing_key":
        row[ix[shape.key]] = ""
        return True
    value = row[ix[shape.time]]
    y, m, d = value[:4], value[5:7], value[8:10]
    if kind == "bad_date":
        pattern = rng.choice(BAD_DATES if shape.time_is_date else BAD_TIMES)
        row[ix[shape.time]] = pattern.format(y=y, m=m, d=d)
        return True
    if kind == "alt_date":
        day = f"{y}/{int(m)}/{int(d)}" if rng.random() < 0.5 else f"{y}年{int(m)}月{int(d)}日"
        if not shape.time_is_date:
            day += f" {int(value[11:13])}:{value[14:19]}"
        row[ix[shape.time]] = day
        return True
    if kind == "yuan_text":
        for column in shape.yuan:
            row[ix[column]] = _yuan_text(row[ix[column]], rng)
        return True
    if kind == "fullwidth":
        changed = False
        for column in shape.fold:
            wide = row[ix[column]].translate(FULLWIDTH_ALNUM)
            changed |= wide != row[ix[column]]
            row[ix[column]] = wide
        return changed
    if kind == "stray_spaces":
        filled = [c for c in shape.fold if row[ix[c]]]
        if not filled:
            return False
        column = rng.choice(filled)
        before, after = rng.choice((("", "x"), ("x", ""), ("x", "x")))
        row[ix[column]] = (
            (rng.choice(_SPACES) if before else "") + row[ix[column]]
            + (rng.choice(_SPACES) if after else "")
        )  # fmt: skip
        return True
    raise ValueError(f"unknown dirty kind {kind!r}")


def _yuan_text(value: str, rng: random.Random) -> str:
    units, _, cents = value.partition(".")
    grouped = f"{int(units):,}" + (f".{cents}" if cents else "")
    symbol = rng.choice(("¥", "￥", "")) if "," in grouped else rng.choice(("¥", "￥"))
    return symbol + grouped
