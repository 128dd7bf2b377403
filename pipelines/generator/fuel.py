"""Fuel feeds of the demo city: stations, pump sales, deliveries and tank gauge readings.

Every tank is simulated at one-second resolution in integer milliliters: sales drain it,
deliveries (ordered when it falls below its reorder level, unloaded in daytime, never above 90 %
of capacity) fill it, and the gauge reads it every 10 minutes plus a closing reading at
23:59:59 (日结). A sale at time t is in every reading after t. For an honest station,
per product and day (the `ads_fuel_inventory_check` grain):

    opening + delivered − sold − closing = gauge noise only (|gap| ≤ 0.25 L per reading)

where opening is the previous day's closing reading. The first day's delivery therefore also
carries the day before's closing reading, so day one has an opening too.

A dishonest station's pumps record fewer liters than left the tank. The shortfall is planted so
that the indicator's gap_rate = gap ÷ (sold + delivered) equals the station's planted rate
every day: the recorded share of each sale is set per product and day from that day's true
sales and deliveries (never below half, so on a day of a big delivery and few sales the rate can
fall short). `FuelBalance` holds, per station, product and day, exactly what the indicator will
compute from the delivered rows, realised rate included, so tests can compare.

Prices: a list price per product that moves at the national price windows (every 14 days
here), minus a station's discount; amount_yuan = liters × unit price, rounded half up to fen.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from operator import itemgetter

from pipelines.generator.city import Station, Tank, World
from pipelines.generator.codes import DAY, clock, rng_for, ts

READING_STEP = 600  # seconds between gauge readings
READING_SECS = (*range(0, DAY, READING_STEP), DAY - 1)  # ... and the 23:59:59 closing reading
GAUGE_NOISE_ML = 200  # the gauge reads ± 0.2 L, then rounds to 0.1 L
REORDER_SHARE = 0.4  # order a delivery below this share of capacity
FILL_SHARE = 0.9  # deliveries fill up to this share
DEAD_STOCK_SHARE = 0.02  # pumps cannot draw the last 2 %
DELIVERY_HOURS = (6, 21)  # tankers unload in daytime
STATION_CHANGE_RATE = 0.005  # share of stations with a changed record per day
PRICE_WINDOW_DAYS = 14
PRICE_ANCHOR = date(2024, 1, 3)
LIST_PRICE_FEN = {"92": 745, "95": 796, "98": 896, "0D": 712, "-10D": 751}
DIESEL = ("0D", "-10D")
# Relative fuel sales per hour: commuter peaks, quiet nights.
FUEL_HOUR_WEIGHTS = (
    3, 2, 1, 1, 1, 2, 5, 9, 10, 8, 7, 7,  # 00-11 h
    7, 6, 6, 7, 8, 10, 10, 8, 6, 5, 4, 3,  # 12-23 h
)  # fmt: skip


@dataclass(frozen=True)
class FuelBalance:
    """The fuel-inventory check of one station, product and day, from the delivered rows."""

    day: date
    station_id: str
    product: str
    opening_ml: int
    delivered_ml: int
    sold_ml: int  # as the pumps recorded it
    closing_ml: int
    planted_rate: float  # 0 for honest stations
    true_sold_ml: int  # what really left the tanks

    @property
    def gap_ml(self) -> int:
        return self.opening_ml + self.delivered_ml - self.sold_ml - self.closing_ml

    @property
    def gap_rate(self) -> float:
        moved = self.sold_ml + self.delivered_ml
        return self.gap_ml / moved if moved else 0.0


@dataclass
class FuelDay:
    stations: list[list[str]]
    sales: list[list[str]]
    deliveries: list[list[str]]
    readings: list[list[str]]
    balances: list[FuelBalance]


def liters(ml: int) -> str:
    sign = "-" if ml < 0 else ""
    ml = abs(ml)
    return f"{sign}{ml // 1000}.{ml % 1000:03d}"


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _gauge(ml: int) -> str:
    return f"{ml // 1000}.{ml % 1000 // 100}"  # already rounded to 100 ml


_SLOT = {sec: i for i, sec in enumerate(READING_SECS)}


class FuelRun:
    """The fuel feeds of a run, one day at a time (call `day` for days 0, 1, 2, … in order)."""

    def __init__(self, world: World, seed: int) -> None:
        self.world, self.seed = world, seed
        # What each tank's gauge said last: after a day, its closing reading.
        self.last_reading: dict[tuple[str, str], int] = {}
        self._gauge_rng = rng_for(seed, "fuel", "gauge")

    def price_fen(self, product: str, day: date) -> int:
        """List price of `product` on `day`, in fen per liter."""
        window = (day - PRICE_ANCHOR).days // PRICE_WINDOW_DAYS
        step = rng_for(self.seed, "price", window).randint(-30, 30)
        return LIST_PRICE_FEN[product] + (round(step * 0.9) if product in DIESEL else step)

    def _read(self, level_ml: int) -> int:
        # random() is several times faster than randint on this hot path (every reading).
        noisy = level_ml + int(self._gauge_rng.random() * (2 * GAUGE_NOISE_ML + 1)) - GAUGE_NOISE_ML
        return max(0, round(noisy / 100) * 100)

    def day(self, d: int, day: date) -> FuelDay:
        stations_rows = self._station_rows(d, day)
        sales: list[tuple[int, int, list[str]]] = []
        deliveries: list[tuple[int, int, list[str]]] = []
        slots: list[list[list[str]]] = [[] for _ in READING_SECS]
        balances: list[FuelBalance] = []
        eve_rows: list[list[str]] = []
        if d == 0:  # the day before's closing reading, so the first day has an opening
            eve = ts(day - timedelta(days=1), DAY - 1)
            for s in self.world.stations:
                for t in s.tanks:
                    reading = self._read(t.level_ml)
                    self.last_reading[(s.station_id, t.tank_id)] = reading
                    eve_rows.append([s.station_id, t.tank_id, t.product, _gauge(reading), eve])
        for s in self.world.stations:
            self._station_day(s, d, day, sales, deliveries, slots, balances)
        sales.sort(key=itemgetter(0, 1))
        deliveries.sort(key=itemgetter(0, 1))
        return FuelDay(
            stations=stations_rows,
            sales=[row for *_, row in sales],
            deliveries=[row for *_, row in deliveries],
            readings=eve_rows + [row for slot in slots for row in slot],
            balances=balances,
        )

    def _station_rows(self, d: int, day: date) -> list[list[str]]:
        stations = self.world.stations
        if d == 0:
            return [s.row() for s in stations]
        rng = rng_for(self.seed, "stations", d)
        expected = STATION_CHANGE_RATE * len(stations)
        n = min(len(stations), int(expected) + (rng.random() < expected % 1))
        changed = []
        for s in rng.sample(stations, n):
            if rng.random() < 0.6 or "综合能源站" in s.name:  # surveyed again
                s.lat = round(s.lat + rng.uniform(-0.002, 0.002), 6)
                s.lon = round(s.lon + rng.uniform(-0.002, 0.002), 6)
            else:  # now also charges electric cars
                s.name = s.name.replace("加油站", "综合能源站")
            s.updated_at = ts(day, rng.randrange(8 * 3600, 18 * 3600))
            changed.append(s)
        changed.sort(key=lambda s: (s.updated_at, s.station_id))
        return [s.row() for s in changed]

    def _station_day(
        self,
        s: Station,
        d: int,
        day: date,
        sales_out: list[tuple[int, int, list[str]]],
        deliveries_out: list[tuple[int, int, list[str]]],
        slots: list[list[list[str]]],
        balances: list[FuelBalance],
    ) -> None:
        rng = rng_for(self.seed, "fuel", s.number, d)
        iso, ymd = day.isoformat(), f"{day:%Y%m%d}"
        times = clock()
        busy = (1.08 if day.weekday() >= 4 else 0.97) * rng.lognormvariate(0, 0.08)
        base = d * DAY
        opening = {t.tank_id: self.last_reading[(s.station_id, t.tank_id)] for t in s.tanks}
        tank_sales: list[list[tuple[int, int, str]]] = []
        tank_deliveries: list[list[tuple[int, int]]] = []
        for ti, tank in enumerate(s.tanks):
            nozzles = [nid for nid, k in s.nozzles if k == ti]
            sold: list[tuple[int, int, str]] = []
            delivered: list[tuple[int, int]] = []
            dead = round(tank.capacity_ml * DEAD_STOCK_SHARE)
            reorder = REORDER_SHARE * tank.capacity_ml
            events = iter(_sales(rng, tank, busy, nozzles))
            event = next(events, None)
            for reading_sec in READING_SECS:
                # Everything strictly before a reading is in it.
                while event is not None and event[0] < reading_sec:
                    sec, ml, nozzle = event
                    self._deliver(rng, tank, base, sec, delivered)
                    if tank.level_ml - ml >= dead:  # else the pump stops: dead stock
                        tank.level_ml -= ml
                        sold.append(event)
                        if tank.delivery_due is None and tank.level_ml < reorder:
                            tank.delivery_due = base + _delivery_time(rng, sec)
                    event = next(events, None)
                self._deliver(rng, tank, base, reading_sec - 1, delivered)
                value = self._read(tank.level_ml)
                slots[_SLOT[reading_sec]].append(
                    [s.station_id, tank.tank_id, tank.product, _gauge(value),
                     f"{iso}T{times[reading_sec]}+08:00"]
                )  # fmt: skip
                self.last_reading[(s.station_id, tank.tank_id)] = value
            tank_sales.append(sold)
            tank_deliveries.append(delivered)

        station_sales: list[tuple[int, str, list[str]]] = []
        station_deliveries: list[tuple[int, list[str]]] = []
        for product in dict.fromkeys(t.product for t in s.tanks):
            indices = [i for i, t in enumerate(s.tanks) if t.product == product]
            true_sold = sum(ml for i in indices for _, ml, _ in tank_sales[i])
            delivered_ml = sum(ml for i in indices for _, ml in tank_deliveries[i])
            keep = 1.0
            if s.under_reporting and true_sold:
                # gap ÷ (recorded + delivered) = p  <=>  share hidden = p(T + D) / (T(1 + p))
                p = s.under_reporting
                keep = 1 - min(0.5, p * (true_sold + delivered_ml) / (true_sold * (1 + p)))
            price = self.price_fen(product, day) - s.discount_fen
            price_text = yuan(price)
            recorded_total = 0
            for i in indices:
                for sec, ml, nozzle in tank_sales[i]:
                    recorded = round(ml * keep)
                    recorded_total += recorded
                    amount = (recorded * price + 500) // 1000  # ml × fen/L, half up to fen
                    row = [
                        "", s.station_id, nozzle, product, liters(recorded), price_text,
                        yuan(amount), f"{iso}T{times[sec]}+08:00",
                    ]  # fmt: skip
                    station_sales.append((sec, nozzle, row))
                for sec, ml in tank_deliveries[i]:
                    row = ["", s.station_id, product, liters(ml), s.supplier,
                           f"{iso}T{times[sec]}+08:00"]  # fmt: skip
                    station_deliveries.append((sec, row))
            balances.append(
                FuelBalance(
                    day=day,
                    station_id=s.station_id,
                    product=product,
                    opening_ml=sum(opening[s.tanks[i].tank_id] for i in indices),
                    delivered_ml=delivered_ml,
                    sold_ml=recorded_total,
                    closing_ml=sum(
                        self.last_reading[(s.station_id, s.tanks[i].tank_id)] for i in indices
                    ),
                    planted_rate=s.under_reporting,
                    true_sold_ml=true_sold,
                )
            )
        # Pump and delivery serial numbers run in time order per station and day.
        station_sales.sort(key=itemgetter(0, 1))
        for n, (sec, _, row) in enumerate(station_sales, 1):
            row[0] = f"S{ymd}{s.number:05d}{n:05d}"
            sales_out.append((sec, s.number, row))
        station_deliveries.sort(key=itemgetter(0))
        for n, (sec, row) in enumerate(station_deliveries, 1):
            row[0] = f"D{ymd}{s.number:05d}{n:02d}"
            deliveries_out.append((sec, s.number, row))

    def _deliver(
        self, rng: random.Random, tank: Tank, base: int, until: int, out: list[tuple[int, int]]
    ) -> None:
        """Unload the tank's planned delivery if it is due by second `until` of the day."""
        due = tank.delivery_due
        if due is None or due - base > until:
            return
        tank.delivery_due = None
        room = FILL_SHARE * tank.capacity_ml - tank.level_ml
        # Tankers carry whole compartments of 500 L; a little stays in the hoses.
        ml = int(room // 500_000) * 500_000 - rng.randrange(0, 30_000)
        if ml <= 0:
            return
        tank.level_ml += ml
        out.append((due - base, ml))


def _sales(
    rng: random.Random, tank: Tank, busy: float, nozzles: list[str]
) -> list[tuple[int, int, str]]:
    """The day's fills from one tank: (second, ml, nozzle), in time order."""
    diesel = tank.product in DIESEL
    median, sigma, low, high = (
        (60_000, 0.6, 5_000, 400_000) if diesel else (30_000, 0.35, 3_000, 80_000)
    )
    mean = median * math.exp(sigma**2 / 2)
    n = max(1, round(tank.expected_daily_ml * busy / mean))
    hours = rng.choices(range(24), FUEL_HOUR_WEIGHTS, k=n)
    # Up to 23:59:58, so the 23:59:59 closing reading sees every sale of the day.
    secs = sorted(min(h * 3600 + int(rng.random() * 3600), DAY - 2) for h in hours)
    log_median = math.log(median)
    return [
        (
            sec,
            min(max(round(math.exp(log_median + sigma * rng.gauss(0, 1))), low), high),
            nozzles[int(rng.random() * len(nozzles))],
        )
        for sec in secs
    ]


def _delivery_time(rng: random.Random, sec: int) -> int:
    """Seconds from the start of today: 3-10 h after the order, moved into daytime."""
    due = sec + rng.randrange(3 * 3600, 10 * 3600)
    day_off, within = divmod(due, DAY)
    opens, closes = DELIVERY_HOURS[0] * 3600, DELIVERY_HOURS[1] * 3600
    if within < opens:
        within = opens + rng.randrange(0, 3 * 3600)
    elif within >= closes:
        day_off, within = day_off + 1, opens + rng.randrange(0, 3 * 3600)
    return day_off * DAY + within
