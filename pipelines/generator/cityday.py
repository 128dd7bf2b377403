"""All eleven feeds of the demo city, consistent with each other, one city-day at a time.

Row API (what the database loader and the exchange service consume)::

    run = generate_city(date(2024, 11, 5), days=3, scale=0.1, seed=7)
    run.world                      # the shared city: enterprises, merchants, stations, truth
    for city_day in run:           # CityDay, in date order; iterate once
        city_day.header("pay_settlements")  # contract column order (feed_columns)
        city_day.lines("pay_settlements")   # list[list[str]]: raw text cells as delivered
        city_day.rows("gov_tax_monthly")    # list[dict[str, str | None]]: "" -> None
        city_day.truth["fuel_sales"]        # exact counts of what was planted
        city_day.planted["fuel_sales"]      # line index -> dirty kind, for every dirty line
        city_day.fuel                       # FuelBalance per station, product and day

Every value is text exactly as the producer delivers it, dirty rows included (full-width
digits, `¥1,234.50`, unparsable dates, …): the database and exchange channels must pass them on
as text too. In `rows`, an empty cell is None, and a truncated pay_transactions line lacks its
missing columns (None). pay_settlements has no `updated_at` (the database adds its own); the
gov_* rows' `updated_at` is the exchange's change time (`?updated_since=`).

A day's rows are the day's delivery: full registries (gov_enterprise_registry,
merchant_registry, fuel_stations) on the first day and changes afterwards; the first day of
gov_tax_monthly and gov_social_insurance also carries the past year of filings (see gov.py).

File writer: `write_city(landing, start, days, …)` writes the landing-channel feeds (and any
others asked for) as `<landing>/<feed>/<yyyy-mm-dd>/<feed>_<yyyymmdd>.<ext>` in the formats
producers use (DELIVERY_FORMATS): CSV in UTF-8, UTF-8 with BOM or GBK, XLSX, JSON Lines.

Volume at scale 1 (measured): a steady city-day is about 0.70 M rows (payments 0.31 M, tank
readings 0.16 M, platform orders 0.12 M, pump sales 0.09 M, settlements 0.02 M, registry
changes, filings and fuel deliveries a few thousand); the first day adds the full registries
and a year of filings, about 1.07 M rows in all. Generating one takes about 8 s (the first
12 s) on the project's 2-core machine, writing the files 2-4 s. Identical
arguments give identical rows and byte-identical files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from pipelines.generator.city import World, build_world
from pipelines.generator.codes import new_uscc, rng_for
from pipelines.generator.dirt import DEFAULT_DIRT, CityDirt, Planted, Renew, plant
from pipelines.generator.files import feed_columns, write_csv, write_jsonl, write_xlsx
from pipelines.generator.fuel import FuelBalance, FuelRun
from pipelines.generator.gov import HISTORY_MONTHS, GovRun
from pipelines.generator.orders import OrdersRun
from pipelines.generator.payment import PaymentRun, registry_format
from pipelines.generator.settlements import settlement_rows

FEEDS = (
    "gov_enterprise_registry",
    "gov_tax_monthly",
    "gov_social_insurance",
    "merchant_registry",
    "pay_transactions",
    "pay_settlements",
    "merchant_orders",
    "fuel_stations",
    "fuel_sales",
    "fuel_deliveries",
    "fuel_tank_readings",
)
# Feeds whose rows carry merchant ids that must be in the registry.
MERCHANT_FEEDS = ("pay_transactions", "pay_settlements", "merchant_orders")


@cache
def feeds_of_channel(channel: str) -> tuple[str, ...]:
    """The feeds whose ODS contract names `channel` (landing | database | exchange)."""
    from citylake.settings import get_settings
    from warehouse_layers.contract import feed_table, load_contracts

    contracts = load_contracts(get_settings().contracts_dir)
    return tuple(f for f in FEEDS if feed_table(contracts, f).feed.channel == channel)  # type: ignore[union-attr]


@dataclass(frozen=True)
class DeliveryFormat:
    kind: Literal["csv", "xlsx", "jsonl"]
    encoding: str = "utf-8"
    bom: bool = False

    @property
    def ext(self) -> str:
        return self.kind


_CSV = DeliveryFormat("csv")
DELIVERY_FORMATS: dict[str, DeliveryFormat] = {
    "gov_enterprise_registry": DeliveryFormat("jsonl"),  # the exchange speaks JSON
    "gov_tax_monthly": DeliveryFormat("jsonl"),
    "gov_social_insurance": DeliveryFormat("jsonl"),
    "pay_transactions": _CSV,
    "pay_settlements": _CSV,
    "merchant_orders": DeliveryFormat("jsonl"),  # platform APIs
    "fuel_stations": DeliveryFormat("xlsx"),  # a spreadsheet kept by hand at 商务局
    "fuel_sales": DeliveryFormat("csv", "utf-8", bom=True),  # Excel-friendly export
    "fuel_deliveries": DeliveryFormat("csv", "gbk"),  # an older depot system
    "fuel_tank_readings": _CSV,
}


def delivery_format(feed: str, day_index: int) -> DeliveryFormat:
    """How `feed`'s delivery of the run's `day_index`-th day is written."""
    if feed == "merchant_registry":
        encoding, bom = registry_format(day_index)
        return DeliveryFormat("csv", encoding, bom)
    return DELIVERY_FORMATS[feed]


@dataclass
class CityDay:
    """Every feed's delivery of one day of the city."""

    index: int  # 0 for the run's first day
    day: date
    tables: dict[str, list[list[str]]]  # feed -> lines in contract column order
    planted: dict[str, dict[int, str]]  # feed -> line index -> planted dirty kind
    truth: dict[str, dict[str, int]]  # feed -> exact counts (see CityRun)
    fuel: list[FuelBalance]

    def header(self, feed: str) -> list[str]:
        return feed_columns(feed)

    def lines(self, feed: str) -> list[list[str]]:
        return self.tables[feed]

    def rows(self, feed: str) -> list[dict[str, str | None]]:
        header = feed_columns(feed)
        return [
            {
                name: (row[i] if i < len(row) and row[i] != "" else None)
                for i, name in enumerate(header)
            }
            for row in self.tables[feed]
        ]

    def counts(self) -> dict[str, int]:
        return {feed: len(lines) for feed, lines in self.tables.items()}

    @property
    def total_rows(self) -> int:
        return sum(len(lines) for lines in self.tables.values())


class CityRun:
    """A run of the city: `days` days from `start` at `scale`, deterministic in `seed`.

    Iterate once for CityDay objects in date order. truth keys per feed: "rows" (lines
    delivered), "extra" (dirty copies added) and one count per planted kind (dirt.KINDS);
    pay_transactions has GeneratedPayment's keys; merchant_registry adds merchant_versions and
    district_moves; gov_enterprise_registry new/closed/changed; gov_tax_monthly
    tax_corrections and gov_social_insurance si_corrections (superseding deliveries);
    merchant_orders cancelled/refunded.
    """

    def __init__(
        self,
        start: date,
        days: int,
        *,
        scale: float = 0.01,
        seed: int = 20241105,
        dirty: CityDirt = DEFAULT_DIRT,
        history_months: int = HISTORY_MONTHS,
    ) -> None:
        self.start, self.days, self.scale, self.seed, self.dirty = start, days, scale, seed, dirty
        self.payment = PaymentRun(start, days, scale=scale, seed=seed, dirty=dirty.payment)
        self.world: World = build_world(seed, scale, start, self.payment.merchants)
        self.gov = GovRun(self.world, seed, start, days, history_months)
        self.fuel = FuelRun(self.world, seed)
        self.orders = OrdersRun(self.world, seed, start, days, scale)
        self._started = False

    def __iter__(self) -> Iterator[CityDay]:
        if self._started:
            raise RuntimeError("a CityRun is iterated once; make a new one to start over")
        self._started = True
        world = self.world
        for pay in self.payment:
            d, day = pay.index, pay.day
            closing = [m for m in world.merchants if m.closed_day == d]
            registry, tax, social = self.gov.day(d, day, closing)
            fuel = self.fuel.day(d, day)
            raw = {
                "gov_enterprise_registry": registry,
                "gov_tax_monthly": tax,
                "gov_social_insurance": social,
                "merchant_registry": [list(r) for r in pay.registry],
                "pay_settlements": settlement_rows(day, pay.takings, world.accounts),
                "merchant_orders": self.orders.day(d, day),
                "fuel_stations": fuel.stations,
                "fuel_sales": fuel.sales,
                "fuel_deliveries": fuel.deliveries,
                "fuel_tank_readings": fuel.readings,
            }
            tables: dict[str, list[list[str]]] = {}
            planted: dict[str, dict[int, str]] = {"pay_transactions": {}}
            truth: dict[str, dict[str, int]] = {}
            renewers = self._renewers(d)
            candidates = frozenset(world.candidates)
            for feed in FEEDS:
                if feed == "pay_transactions":
                    tables[feed] = pay.transactions
                    truth[feed] = {**pay.truth, "rows": len(pay.transactions)}
                    continue
                protected = candidates if feed.startswith("gov_") else frozenset()
                result: Planted = plant(
                    feed,
                    raw[feed],
                    self.dirty.for_feed(feed),
                    rng_for(self.seed, "dirt", feed, d),
                    renew=renewers.get(feed),
                    protected=protected,
                )
                tables[feed], planted[feed], truth[feed] = result.rows, result.kinds, result.counts
            truth["merchant_registry"]["merchant_versions"] = pay.truth["merchant_versions"]
            truth["merchant_registry"]["district_moves"] = pay.truth["district_moves"]
            truth["gov_enterprise_registry"].update(
                {k: self.gov.truth[k] for k in ("new", "closed", "changed")}
            )
            truth["gov_tax_monthly"]["tax_corrections"] = self.gov.truth["tax_corrections"]
            truth["gov_social_insurance"]["si_corrections"] = self.gov.truth["si_corrections"]
            truth["merchant_orders"].update(self.orders.truth)
            yield CityDay(d, day, tables, planted, truth, fuel.balances)

    def _renewers(self, d: int) -> dict[str, Renew]:
        """How an extra dirty copy gets its own identity, per feed (see dirt.py)."""
        columns = {feed: {c: i for i, c in enumerate(feed_columns(feed))} for feed in FEEDS}
        taken = self.world.taken_usccs
        serial = [0]

        def next_serial() -> int:
            serial[0] += 1
            return serial[0]

        def merchant(row: list[str], rng: random.Random) -> None:
            ix = columns["merchant_registry"]
            row[ix["merchant_id"]] = f"M9{d:03d}{next_serial():04d}"  # a newly registered shop
            if row[ix["uscc"]]:
                code = row[ix["uscc"]]
                row[ix["uscc"]] = new_uscc(rng, code[:2], code[2:8], taken)

        def enterprise(row: list[str], rng: random.Random) -> None:
            ix = columns["gov_enterprise_registry"]
            code = row[ix["uscc"]]
            row[ix["uscc"]] = new_uscc(rng, code[:2], code[2:8], taken)

        def station(row: list[str], rng: random.Random) -> None:
            row[columns["fuel_stations"]["station_id"]] = f"ST9{d:02d}{next_serial():02d}"

        def suffixed(feed: str, column: str) -> Renew:
            def renew(row: list[str], rng: random.Random) -> None:
                row[columns[feed][column]] += "R"  # re-sent under a new serial

            return renew

        def reading(row: list[str], rng: random.Random) -> None:
            i = columns["fuel_tank_readings"]["reading_time"]
            second = rng.randint(1, 58)
            row[i] = f"{row[i][:17]}{second:02d}{row[i][19:]}"  # a re-sent reading

        return {
            "merchant_registry": merchant,
            "gov_enterprise_registry": enterprise,
            "fuel_stations": station,
            "fuel_sales": suffixed("fuel_sales", "sale_id"),
            "fuel_deliveries": suffixed("fuel_deliveries", "delivery_id"),
            "fuel_tank_readings": reading,
        }


def generate_city(
    start: date,
    days: int,
    *,
    scale: float = 0.01,
    seed: int = 20241105,
    dirty: CityDirt = DEFAULT_DIRT,
    history_months: int = HISTORY_MONTHS,
) -> CityRun:
    """A run of the city (iterate it for CityDay objects). scale=1 is about 20,000 merchants,
    12,000 enterprises and 300 fuel stations."""
    return CityRun(start, days, scale=scale, seed=seed, dirty=dirty, history_months=history_months)


def generate_city_day(
    day: date,
    *,
    scale: float = 0.01,
    seed: int = 20241105,
    dirty: CityDirt = DEFAULT_DIRT,
) -> CityDay:
    """One city-day as a run of its own (full registries and a year of filings included)."""
    return next(iter(generate_city(day, 1, scale=scale, seed=seed, dirty=dirty)))


def write_day(
    landing: Path, city_day: CityDay, feeds: tuple[str, ...] | None = None
) -> dict[str, Path]:
    """Write `feeds` (default: the landing-channel ones) of a city-day; feed -> file."""
    written = {}
    for feed in feeds if feeds is not None else feeds_of_channel("landing"):
        fmt = delivery_format(feed, city_day.index)
        day = city_day.day
        path = Path(landing) / feed / day.isoformat() / f"{feed}_{day:%Y%m%d}.{fmt.ext}"
        header, lines = city_day.header(feed), city_day.lines(feed)
        if fmt.kind == "csv":
            write_csv(path, header, lines, fmt.encoding, fmt.bom)
        elif fmt.kind == "xlsx":
            write_xlsx(path, header, lines)
        else:
            write_jsonl(path, header, lines)
        written[feed] = path
    return written


@dataclass
class GeneratedCity:
    """What write_city wrote, and the run's truth summed over its days."""

    files: dict[str, list[Path]]  # feed -> files, in day order
    truth: dict[str, dict[str, int]]
    world: World
    fuel: list[FuelBalance] = field(default_factory=list)
    rows_per_day: list[dict[str, int]] = field(default_factory=list)


def write_city(
    landing: Path,
    start: date,
    days: int,
    *,
    scale: float = 0.01,
    seed: int = 20241105,
    dirty: CityDirt = DEFAULT_DIRT,
    feeds: tuple[str, ...] | None = None,
) -> GeneratedCity:
    """Generate a run and write `feeds` of every day (default: the landing-channel feeds;
    pass FEEDS for all eleven as files)."""
    run = generate_city(start, days, scale=scale, seed=seed, dirty=dirty)
    out = GeneratedCity(files={}, truth={}, world=run.world)
    for city_day in run:
        for feed, path in write_day(landing, city_day, feeds).items():
            out.files.setdefault(feed, []).append(path)
        for feed, counts in city_day.truth.items():
            total = out.truth.setdefault(feed, {})
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
        out.fuel += city_day.fuel
        out.rows_per_day.append(city_day.counts())
    return out
