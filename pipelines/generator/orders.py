"""Platform orders (merchant_orders) of the demo city's merchants.

Takeaway and group-buy orders of restaurants and shops, hotel bookings, scenic-spot tickets and
ride-hailing, from the merchants of the shared registry that sell on platforms, only while they
are open. The export is incremental by `updated_at`: an order appears as `paid` (or
`cancelled` minutes after it was placed) on its day, and a refunded order appears again on a
later day with status `refunded` and a later `updated_at`, which supersedes the paid version.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from datetime import date, timedelta
from itertools import accumulate
from operator import itemgetter

from pipelines.generator.city import World
from pipelines.generator.codes import DAY, clock, rng_for, ts
from pipelines.generator.payment import HOUR_WEIGHTS, _Merchant

PLATFORMS = ("meituan", "ctrip", "amap", "tongcheng", "local")
ORDERS_PER_DAY_AT_SCALE_1 = 120_000
CANCEL_RATE = 0.03
REFUND_RATE = 0.025
COMMISSION = {"meituan": 0.08, "ctrip": 0.12, "amap": 0.06, "tongcheng": 0.1, "local": 0.03}
# Per sector: share of merchants on platforms, orders per merchant (relative), median order
# (fen), spread, and the platforms they sell on with weights.
PLATFORM_SECTORS: dict[str, tuple[float, float, int, float, dict[str, int]]] = {
    "catering": (0.45, 1.0, 3_800, 0.5, {"meituan": 80, "local": 20}),
    "retail": (0.2, 0.6, 4_500, 0.7, {"meituan": 60, "local": 40}),
    "lodging": (0.8, 0.5, 22_000, 0.5, {"ctrip": 45, "meituan": 30, "tongcheng": 20, "local": 5}),
    "scenic": (0.9, 2.0, 9_000, 0.6, {"ctrip": 35, "tongcheng": 30, "meituan": 20, "amap": 15}),
    "transport": (0.3, 1.2, 2_500, 0.5, {"amap": 80, "local": 20}),
    "other": (0.3, 0.4, 8_000, 0.7, {"meituan": 80, "local": 20}),
}


class OrdersRun:
    """merchant_orders of a run, one day at a time (call `day` for 0, 1, 2, … in order)."""

    def __init__(self, world: World, seed: int, start: date, days: int, scale: float) -> None:
        self.seed, self.start, self.days = seed, start, days
        self.per_day = round(ORDERS_PER_DAY_AT_SCALE_1 * scale)
        rng = rng_for(seed, "orders", "merchants")
        # (merchant, weight, platforms, cumulative platform weights) of merchants on platforms.
        self.sellers: list[tuple[_Merchant, float, tuple[str, ...], tuple[int, ...]]] = []
        for m in world.merchants:
            share, busy, _, _, platforms = PLATFORM_SECTORS[m.sector]
            if rng.random() < share:
                names = tuple(platforms)
                cumulative = tuple(accumulate(platforms.values()))  # for bisect per order
                self.sellers.append((m, m.activity * busy, names, cumulative))
        self.later: list[list[tuple[int, list[str]]]] = [[] for _ in range(days)]
        self.truth: dict[str, int] = {}

    def day(self, d: int, day: date) -> list[list[str]]:
        rng = rng_for(self.seed, "orders", d)
        self.truth = {"cancelled": 0, "refunded": 0}
        iso, ymd = day.isoformat(), f"{day:%Y%m%d}"
        times = clock()
        open_ = [s for s in self.sellers if s[0].closed_day is None or s[0].closed_day > d]
        if not open_:
            return []
        picks = rng.choices(open_, [s[1] for s in open_], k=self.per_day)
        hours = rng.choices(range(24), HOUR_WEIGHTS, k=self.per_day)
        secs = sorted(h * 3600 + int(rng.random() * 3600) for h in hours)
        out: list[tuple[int, list[str]]] = []
        for seq, ((m, _, platforms, weights), sec) in enumerate(zip(picks, secs, strict=True), 1):
            _, _, median, sigma, _ = PLATFORM_SECTORS[m.sector]
            platform = platforms[bisect(weights, rng.random() * weights[-1])]
            gmv = max(100, round(median * math.exp(sigma * rng.gauss(0, 1))))
            commission = round(gmv * COMMISSION[platform])
            row = [
                f"O{ymd}{seq:08d}", m.merchant_id, platform, f"{iso}T{times[sec]}+08:00",
                str(gmv), str(commission), "paid", "",
            ]  # fmt: skip
            fate = rng.random()
            if fate < CANCEL_RATE:
                upd = min(sec + rng.randrange(60, 1800), DAY - 1)
                row[6], row[5] = "cancelled", "0"  # no commission on a cancelled order
                self.truth["cancelled"] += 1
            else:
                upd = min(sec + int(rng.random() * 5), DAY - 1)
                if fate < CANCEL_RATE + REFUND_RATE:
                    self._plan_refund(rng, row, m, d, sec)
            row[7] = f"{iso}T{times[upd]}+08:00"
            out.append((upd, row))
        out += [(at, row) for at, row in self.later[d]]
        self.truth["refunded"] = len(self.later[d])
        self.later[d] = []
        out.sort(key=itemgetter(0))  # incremental export: updated_at order
        return [row for _, row in out]

    def _plan_refund(
        self, rng: random.Random, row: list[str], m: _Merchant, d: int, sec: int
    ) -> None:
        # Refunded 1 hour to 3 days later; past the run's end it is never delivered.
        when, within = divmod(sec + rng.randrange(3600, 3 * DAY), DAY)
        when += d
        if when >= self.days or (m.closed_day is not None and m.closed_day <= when):
            return
        later = list(row)
        later[6] = "refunded"
        later[7] = ts(self.start + timedelta(days=when), within)
        self.later[when].append((within, later))
