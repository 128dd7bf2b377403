"""The demo city's shared world: enterprises, merchants, fuel stations and their tanks.

Everything every feed refers to is made here once, deterministically from (seed, scale, start):

- merchants are the payment generator's (`PaymentRun.merchants`), so merchant_registry,
  pay_transactions, pay_settlements and merchant_orders share merchant ids;
- every merchant with a code is a registered market entity of the registry under that same
  USCC, in the merchant's home district and industry: a company ('91…') or an 个体工商户
  ('92…', named like its shop, paying no corporate income tax); merchants without a code are
  unregistered street traders;
- other enterprises (factories, wholesalers, services, the fuel station operators and the fuel
  wholesalers that supply them) complete the registry, with a few closed long ago;
- annual revenue is planted per enterprise; the 纳统 thresholds of source-feeds.md decide
  `above_designated_size`, and some enterprises sit just below or above their threshold so that
  inclusion candidates (达标/培育) exist;
- fuel stations belong to enterprises (the sinopec and petrochina stations to their city
  branch), have one or more tanks per product and nozzles bound to tanks; a few are planted as
  dishonest (their pumps under-report sales, see fuel.py).

GB/T 4754-2017 classes and 纳统 thresholds of the non-merchant enterprises are the one
hand-made table here (no maintained package carries GB/T 4754); the merchant sectors' codes are
payment.SECTORS.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

from pipelines.generator.codes import (
    CITY_NAME,
    districts,
    new_uscc,
    person_name,
    resident_id,
    rng_for,
    ts,
)
from pipelines.generator.payment import (
    SECTORS,
    TXNS_PER_DAY_AT_SCALE_1,
    _Merchant,
)

ENTERPRISE_STATUSES = ("存续", "在业", "迁出", "注销", "吊销")
ACTIVE_STATUSES = ("存续", "在业")
OTHER_ENTERPRISES_AT_SCALE_1 = 3_600  # enterprises without a merchant of their own
MIN_OTHER_ENTERPRISES = 12
STATIONS_AT_SCALE_1 = 340
MIN_STATIONS = 4  # room for the two planted dishonest stations and honest ones
FUEL_SUPPLIERS = 4
HISTORIC_CLOSED_SHARE = 0.04  # of the other enterprises: closed before the run, kept in history
# Share of near-threshold enterprises planted among those not yet in statistics, and the
# ratios (revenue / threshold) they get: 培育 (0.8-1.0), 达标 (>= 1.0), and just below 0.8.
CANDIDATE_SHARE = 0.02
CANDIDATE_RATIOS = (0.85, 0.95, 1.05, 1.3, 0.78, 0.9, 1.02)
# Dishonest stations: the gap rate (fuel-inventory indicator) their pumps' under-reporting
# produces. The first two are always planted: 1 % must be flagged (> 0.5 %), 0.3 % must not.
UNDER_REPORTING = (0.01, 0.003, 0.02, 0.006)
DISHONEST_SHARE = 0.03

# Settlement banks (PBOC bank category codes) and how often a merchant's account is in a branch
# inside the city: rural commercial banks always are; the big banks' accounts often sit in a
# provincial or head-office branch.
SETTLE_BANKS = (  # code, weight, share of accounts local
    ("102", 22, 0.65),  # 工商银行
    ("103", 18, 0.75),  # 农业银行
    ("104", 10, 0.65),  # 中国银行
    ("105", 20, 0.7),  # 建设银行
    ("403", 10, 0.85),  # 邮储银行
    ("314", 15, 1.0),  # 农村商业银行
    ("313", 5, 0.9),  # 城市商业银行
)


@dataclass(frozen=True)
class Activity:
    """A line of business: GB/T 4754-2017 class, 纳统 threshold, how enterprises in it look."""

    industry_code: str
    threshold_wan: int  # annual main business revenue for 规上/限上 (source-feeds.md)
    trade: str  # the trade word of a company name
    median_share: float  # median revenue as a share of the threshold
    revenue_per_head_wan: float  # annual revenue per insured employee


# The merchant sectors' industries (payment.SECTORS) and the other enterprises' ones.
ACTIVITIES: dict[str, Activity] = {
    a.industry_code: a
    for a in (
        Activity("6210", 200, "餐饮管理", 0.25, 18),  # 正餐服务: 限上餐饮
        Activity("6220", 200, "餐饮", 0.2, 15),  # 快餐服务
        Activity("5212", 500, "商贸", 0.25, 60),  # 超级市场零售: 限上零售
        Activity("5219", 500, "百货", 0.2, 50),  # 其他综合零售
        Activity("6110", 200, "酒店管理", 0.35, 20),  # 旅游饭店: 限上住宿
        Activity("7861", 2000, "旅游开发", 0.1, 30),  # 名胜风景区管理: 规上服务业
        Activity("5413", 2000, "出租汽车", 0.08, 12),  # 出租车客运: 规上服务业
        Activity("8090", 500, "生活服务", 0.15, 15),  # 其他居民服务业: 500 万 class
        Activity("1311", 2000, "米业", 0.35, 120),  # 稻谷加工: 规上工业
        Activity("1431", 2000, "食品", 0.3, 80),  # 米、面制品制造
        Activity("1512", 2000, "酒业", 0.3, 90),  # 白酒制造
        Activity("2710", 2000, "制药", 0.4, 110),  # 化学药品原料药制造
        Activity("3011", 2000, "水泥", 0.5, 150),  # 水泥制造
        Activity("3982", 2000, "电子科技", 0.4, 70),  # 电子电路制造
        Activity("5111", 2000, "粮油贸易", 0.25, 150),  # 谷物、豆及薯类批发: 限上批发
        Activity("5127", 2000, "酒水贸易", 0.2, 120),  # 酒、饮料及茶叶批发
        Activity("5165", 2000, "建材", 0.25, 140),  # 建材批发
        Activity("5162", 2000, "石油", 3.0, 400),  # 石油及制品批发: the fuel suppliers
        Activity("5265", 500, "石油化工", 1.5, 150),  # 机动车燃油零售: the station operators
        Activity("6513", 2000, "软件", 0.15, 40),  # 应用软件开发: 规上服务业
        Activity("7020", 1000, "物业服务", 0.25, 10),  # 物业管理: 1000 万 class
        Activity("7030", 1000, "房产经纪", 0.15, 25),  # 房地产中介服务
        Activity("8010", 500, "家政服务", 0.2, 8),  # 家庭服务: 居民服务 500 万
        Activity("8310", 2000, "教育咨询", 0.08, 15),  # 学前教育: 规上服务业 (教育)
    )
}
# Relative shares of the enterprises that have no merchant of their own.
OTHER_ACTIVITY_WEIGHTS = {
    "1311": 4, "1431": 4, "1512": 3, "2710": 1, "3011": 1, "3982": 2,
    "5111": 6, "5127": 6, "5165": 6, "6513": 4, "7020": 6, "7030": 5,
    "8010": 6, "8310": 4, "6210": 8, "5212": 6, "5219": 8, "6110": 3, "8090": 6,
}  # fmt: skip
SECTOR_TRADES = {a.industry_code: a.trade for a in ACTIVITIES.values()}

_BRAND_CHARS = "阳光兴旺金源福满和顺永盛华丰鸿运瑞祥宏达恒通鑫隆昌泰湘南潇湘舜德九嶷浯溪"
_STREETS = ("中山路", "解放路", "人民路", "建设路", "河西", "东门", "南津", "潇湘路", "新华路")
FUEL_BRANDS = ("sinopec", "petrochina", "private")
FUEL_BRAND_WEIGHTS = (45, 25, 30)
# Approximate county seats (lat, lon) of 永州市, for plausible station positions only; every
# position is kept inside the city's box 24.6-26.9 N, 111.1-112.6 E.
COUNTY_SEATS = {
    "431102": (26.22, 111.62), "431103": (26.43, 111.60), "431122": (26.40, 111.32),
    "431123": (25.96, 111.66), "431124": (25.53, 111.60), "431125": (25.27, 111.34),
    "431126": (25.57, 111.95), "431127": (25.37, 112.19), "431128": (25.91, 112.20),
    "431129": (25.18, 111.58), "431181": (26.58, 111.85),
}  # fmt: skip
CITY_BOX = ((24.6, 26.9), (111.1, 112.6))


@dataclass
class Enterprise:
    uscc: str
    name: str
    legal_rep_id: str
    legal_rep_name: str
    reg_capital_wan: float
    established: date
    status: str
    industry_code: str
    district_code: str
    address: str
    scale: str  # 大|中|小|微
    above_designated_size: str  # Y|N
    updated_at: str
    annual_revenue_fen: int  # planted: any 12 consecutive monthly filings add up to it
    headcount: int
    season_peak: int  # month of the revenue peak
    season_amplitude: float
    vat_rate: float  # effective VAT on revenue
    profit_margin: float
    insured: bool  # files social insurance
    filing_day: int  # day of the following month it files tax (1..15)
    merchants: list[str] = field(default_factory=list)
    closed_on: date | None = None  # 注销/吊销/迁出 date (the run's or before it)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def threshold_wan(self) -> int:
        return ACTIVITIES[self.industry_code].threshold_wan

    def row(self) -> list[str]:
        """A gov_enterprise_registry row in contract order."""
        return [
            self.uscc,
            self.name,
            self.legal_rep_id,
            self.legal_rep_name,
            f"{self.reg_capital_wan:.2f}",
            self.established.isoformat(),
            self.status,
            self.industry_code,
            self.district_code,
            self.address,
            self.scale,
            self.above_designated_size,
            self.updated_at,
        ]

    def monthly_revenue_fen(self, month: int) -> int:
        """Sales revenue of calendar month `month` (1-12), the same every year.

        The weights 1 + a·cos(2π(month − peak)/12) average exactly 1 over any 12 consecutive
        months, so a trailing 12-month sum is the planted annual revenue (± rounding to fen).
        """
        weight = 1 + self.season_amplitude * math.cos(2 * math.pi * (month - self.season_peak) / 12)
        return round(self.annual_revenue_fen * weight / 12)


@dataclass
class Tank:
    tank_id: str
    product: str
    capacity_ml: int
    level_ml: int  # true content now (the simulation's state)
    expected_daily_ml: int
    delivery_due: int | None = None  # run-second of the next planned delivery


@dataclass
class Station:
    station_id: str
    number: int
    uscc: str
    name: str
    district_code: str
    brand: str
    lat: float
    lon: float
    updated_at: str
    tanks: list[Tank]
    nozzles: list[tuple[str, int]]  # (nozzle_id, index into tanks)
    discount_fen: int  # below the brand list price (private stations undercut)
    supplier: str  # USCC of the fuel wholesaler that supplies it
    under_reporting: float = 0.0  # planted gap rate; 0 for honest stations

    def row(self) -> list[str]:
        """A fuel_stations row in contract order."""
        return [
            self.station_id,
            self.uscc,
            self.name,
            self.district_code,
            self.brand,
            f"{self.lat:.6f}",
            f"{self.lon:.6f}",
            self.updated_at,
        ]


@dataclass(frozen=True)
class SettleAccount:
    bank_code: str
    local: bool


@dataclass
class World:
    """The city at the start of a run; feed generators mutate statuses as days pass."""

    seed: int
    scale: float
    start: date
    merchants: list[_Merchant]
    enterprises: list[Enterprise]
    stations: list[Station]
    suppliers: list[str]  # USCCs of the fuel wholesalers
    accounts: dict[str, SettleAccount]  # merchant_id -> settlement account
    candidates: dict[str, float]  # planted near-threshold USCC -> revenue / threshold
    taken_usccs: set[str]

    @property
    def by_uscc(self) -> dict[str, Enterprise]:
        return {e.uscc: e for e in self.enterprises}

    @property
    def dishonest(self) -> dict[str, float]:
        """Planted dishonest station_id -> the gap rate its under-reporting produces."""
        return {s.station_id: s.under_reporting for s in self.stations if s.under_reporting}


def _scale_class(revenue_wan: float, headcount: int) -> str:
    # Roughly 统计上大中小微型企业划分办法 (2017) for most industries.
    if headcount >= 300 and revenue_wan >= 40_000:
        return "大"
    if headcount >= 100 and revenue_wan >= 2_000:
        return "中"
    if headcount >= 10 and revenue_wan >= 100:
        return "小"
    return "微"


def _capital_wan(rng: random.Random, scale: str) -> float:
    low, high = {"微": (3, 50), "小": (30, 500), "中": (300, 5_000), "大": (3_000, 50_000)}[scale]
    raw = math.exp(rng.uniform(math.log(low), math.log(high)))
    magnitude = 10 ** max(0, int(math.log10(raw)) - 1)
    return float(round(raw / magnitude) * magnitude)  # founders pick round capital


def _short(district: str) -> str:
    name = districts()[district]
    return name[:-1] if len(name) > 2 else name  # 零陵区 -> 零陵, 道县 stays


def _company_name(rng: random.Random, district: str, trade: str, taken: set[str]) -> str:
    while True:
        brand = "".join(rng.sample(_BRAND_CHARS, 2))
        name = f"{CITY_NAME}{_short(district)}{brand}{trade}有限公司"
        if name not in taken:
            taken.add(name)
            return name


def address(rng: random.Random, district: str) -> str:
    return f"{CITY_NAME}{districts()[district]}{rng.choice(_STREETS)}{rng.randint(1, 399)}号"


@cache
def district_weights() -> tuple[tuple[str, ...], tuple[int, ...]]:
    names = districts()
    codes = tuple(names)
    # Urban districts (区) carry more business than county-level cities (市) and counties (县).
    return codes, tuple(
        3 if names[c].endswith("区") else 2 if names[c].endswith("市") else 1 for c in codes
    )


def _enterprise(
    rng: random.Random,
    *,
    uscc: str,
    name: str,
    industry: str,
    district: str,
    established: date,
    revenue_wan: float,
    start: date,
) -> Enterprise:
    activity = ACTIVITIES[industry]
    headcount = max(1, round(revenue_wan / activity.revenue_per_head_wan * rng.uniform(0.7, 1.4)))
    scale = _scale_class(revenue_wan, headcount)
    general = revenue_wan >= 500  # 一般纳税人 above 500 万 a year; else 小规模 at 1 %
    # The legal representative was an adult when the enterprise was founded.
    born = date(
        rng.randint(1955, min(2000, established.year - 20)), rng.randint(1, 12), rng.randint(1, 28)
    )
    span = max(0, (start - established).days - 1)
    last_change = established + timedelta(days=rng.randint(0, span))
    return Enterprise(
        uscc=uscc,
        name=name,
        legal_rep_id=resident_id(rng, district, born),
        legal_rep_name=person_name(rng),
        reg_capital_wan=_capital_wan(rng, scale),
        established=established,
        status="在业" if rng.random() < 0.2 else "存续",
        industry_code=industry,
        district_code=district,
        address=address(rng, district),
        scale=scale,
        above_designated_size="N",
        updated_at=ts(last_change, rng.randrange(8 * 3600, 18 * 3600)),
        annual_revenue_fen=round(revenue_wan * 1_000_000),
        headcount=headcount,
        season_peak=rng.randint(1, 12),
        season_amplitude=rng.uniform(0.0, 0.25),
        vat_rate=rng.uniform(0.025, 0.045) if general else 0.01,
        profit_margin=rng.uniform(0.02, 0.12),
        insured=rng.random() < 0.88,
        filing_day=rng.randint(1, 15),
    )


def _expected_payments_wan(merchants: list[_Merchant], scale: float) -> dict[str, float]:
    # What a merchant takes through the payment system in a year, so its enterprise's revenue
    # is never below its own payments.
    per_day = TXNS_PER_DAY_AT_SCALE_1 * scale
    total_activity = sum(m.activity for m in merchants)
    out = {}
    for m in merchants:
        profile = SECTORS[m.sector]
        mean_fen = profile.median_fen * math.exp(profile.sigma**2 / 2)
        out[m.merchant_id] = per_day * m.activity / total_activity * mean_fen * 365 / 1_000_000
    return out


def build_world(seed: int, scale: float, start: date, merchants: list[_Merchant]) -> World:
    """The city of a run: `merchants` are the payment run's; the rest is made here."""
    rng = rng_for(seed, "world")
    taken_usccs = {m.uscc for m in merchants if m.uscc}
    taken_names: set[str] = set()
    payments = _expected_payments_wan(merchants, scale)
    enterprises: list[Enterprise] = []

    for m in merchants:
        if not m.uscc:
            continue  # unregistered street traders
        sole = m.uscc.startswith("92")  # 个体工商户: smaller, named like the shop
        activity = ACTIVITIES[m.industry_code]
        median = activity.threshold_wan * activity.median_share * (0.4 if sole else 1.0)
        revenue = max(
            median * rng.lognormvariate(0, 1.0), payments[m.merchant_id] * rng.uniform(1.5, 3.0)
        )
        established = m.opened_date - timedelta(days=rng.randint(0, 400))
        name = m.name if sole else _company_name(rng, m.home_district, activity.trade, taken_names)
        e = _enterprise(
            rng,
            uscc=m.uscc,
            name=name,
            industry=m.industry_code,
            district=m.home_district,
            established=established,
            revenue_wan=revenue,
            start=start,
        )
        e.merchants.append(m.merchant_id)
        if sole:
            e.insured = rng.random() < 0.3  # most 个体工商户 insure nobody but the owner
        enterprises.append(e)

    codes, weights = district_weights()
    kinds = list(OTHER_ACTIVITY_WEIGHTS)
    kind_weights = list(OTHER_ACTIVITY_WEIGHTS.values())
    n_other = max(MIN_OTHER_ENTERPRISES, round(OTHER_ENTERPRISES_AT_SCALE_1 * scale))
    for _ in range(n_other):
        industry = rng.choices(kinds, kind_weights)[0]
        enterprises.append(
            new_enterprise(rng, industry, codes, weights, start, taken_usccs, taken_names)
        )

    # A few closed long ago: history keeps them, with no filings after they closed.
    for e in rng.sample(enterprises[-n_other:], round(HISTORIC_CLOSED_SHARE * n_other)):
        e.closed_on = start - timedelta(days=rng.randint(400, 1500))
        if e.closed_on <= e.established:
            e.closed_on = None
            continue
        e.status = rng.choice(("注销", "注销", "注销", "吊销", "迁出"))
        e.updated_at = ts(e.closed_on, rng.randrange(9 * 3600, 17 * 3600))

    suppliers = [
        new_enterprise(rng, "5162", codes, weights, start, taken_usccs, taken_names)
        for _ in range(FUEL_SUPPLIERS)
    ]
    enterprises += suppliers
    stations, operators = _stations(
        rng, scale, start, [s.uscc for s in suppliers], taken_usccs, taken_names
    )
    enterprises += operators

    _plant_statistics(rng, enterprises, start)
    candidates = _plant_candidates(rng, enterprises, start, payments)
    accounts = {}
    bank_codes = [b[0] for b in SETTLE_BANKS]
    bank_weights = [b[1] for b in SETTLE_BANKS]
    local_share = {b[0]: b[2] for b in SETTLE_BANKS}
    for m in merchants:
        bank = rng.choices(bank_codes, bank_weights)[0]
        accounts[m.merchant_id] = SettleAccount(bank, rng.random() < local_share[bank])
    return World(
        seed=seed,
        scale=scale,
        start=start,
        merchants=merchants,
        enterprises=enterprises,
        stations=stations,
        suppliers=[s.uscc for s in suppliers],
        accounts=accounts,
        candidates=candidates,
        taken_usccs=taken_usccs,
    )


def new_enterprise(
    rng: random.Random,
    industry: str,
    codes: tuple[str, ...],
    weights: tuple[int, ...],
    start: date,
    taken_usccs: set[str],
    taken_names: set[str],
    *,
    established: date | None = None,
    revenue_wan: float | None = None,
    district: str | None = None,
) -> Enterprise:
    activity = ACTIVITIES[industry]
    district = district or rng.choices(codes, weights)[0]
    if revenue_wan is None:
        revenue_wan = activity.threshold_wan * activity.median_share * rng.lognormvariate(0, 1.1)
    return _enterprise(
        rng,
        uscc=new_uscc(rng, "91", district, taken_usccs),
        name=_company_name(rng, district, activity.trade, taken_names),
        industry=industry,
        district=district,
        established=established or start - timedelta(days=rng.randint(60, 8000)),
        revenue_wan=revenue_wan,
        start=start,
    )


def _plant_statistics(rng: random.Random, enterprises: list[Enterprise], start: date) -> None:
    # In statistics (规上/限上) when revenue reached the threshold, except some that only just
    # grew past it: those are the 达标 candidates the cockpit should find.
    for e in enterprises:
        revenue_wan = e.annual_revenue_fen / 1_000_000
        if revenue_wan >= e.threshold_wan and rng.random() < 0.8:
            e.above_designated_size = "Y"


def _plant_candidates(
    rng: random.Random, enterprises: list[Enterprise], start: date, payments: dict[str, float]
) -> dict[str, float]:
    # Old enough for a full year of filings, active, not in statistics, and with payments (and
    # so platform sales, of a similar size) far below the threshold: the cockpit's revenue
    # proxy of a planted candidate is its tax revenue, whatever the run's length.
    pool = [
        e
        for e in enterprises
        if e.active
        and e.above_designated_size == "N"
        and e.established <= start - timedelta(days=400)
        and e.industry_code not in ("5162", "5265")
        and sum(payments[m] for m in e.merchants) < 0.1 * e.threshold_wan
    ]
    count = max(len(CANDIDATE_RATIOS), round(CANDIDATE_SHARE * len(pool)))
    planted = {}
    for i, e in enumerate(rng.sample(pool, min(count, len(pool)))):
        ratio = CANDIDATE_RATIOS[i % len(CANDIDATE_RATIOS)]
        e.annual_revenue_fen = round(e.threshold_wan * ratio * 1_000_000)
        planted[e.uscc] = ratio
    return planted


def _position(rng: random.Random, district: str) -> tuple[float, float]:
    lat0, lon0 = COUNTY_SEATS[district]
    (lat_lo, lat_hi), (lon_lo, lon_hi) = CITY_BOX
    lat = min(max(lat0 + rng.gauss(0, 0.08), lat_lo + 0.01), lat_hi - 0.01)
    lon = min(max(lon0 + rng.gauss(0, 0.08), lon_lo + 0.01), lon_hi - 0.01)
    return lat, lon


# Share of a station's liters per product; 98 only where it sells enough, -10D (winter
# diesel) at a few large stations. Each tank must sell enough a day for the gauge's noise to
# stay far below the fuel check's 0.5 % threshold.
PRODUCT_SHARES = {"92": 0.52, "95": 0.2, "98": 0.04, "0D": 0.2, "-10D": 0.04}
MIN_TANK_DAILY_LITERS = 400
TANK_SIZES_L = (20_000, 30_000, 40_000, 50_000)
DAYS_OF_STOCK = 3.5  # a tank holds this many days of its sales


def _stations(
    rng: random.Random,
    scale: float,
    start: date,
    suppliers: list[str],
    taken_usccs: set[str],
    taken_names: set[str],
) -> tuple[list[Station], list[Enterprise]]:
    codes, weights = district_weights()
    count = max(MIN_STATIONS, round(STATIONS_AT_SCALE_1 * scale))
    operators: list[Enterprise] = []
    branch: dict[str, Enterprise] = {}
    for brand, word in (("sinopec", "中石化"), ("petrochina", "中石油")):
        e = new_enterprise(rng, "5265", codes, weights, start, taken_usccs, taken_names)
        e.name = f"{CITY_NAME}{word}销售有限公司"  # the brand's city branch runs its stations
        branch[brand] = e
        operators.append(e)
    stations = []
    station_names: set[str] = set()
    for n in range(1, count + 1):
        brand = rng.choices(FUEL_BRANDS, FUEL_BRAND_WEIGHTS)[0]
        district = rng.choices(codes, weights)[0]
        lat, lon = _position(rng, district)
        daily_l = min(max(rng.lognormvariate(math.log(9_000), 0.5), 3_000), 40_000)
        if brand == "private":
            owner = new_enterprise(
                rng, "5265", codes, weights, start, taken_usccs, taken_names,
                revenue_wan=daily_l * 7.5 * 365 / 10_000 * rng.uniform(0.9, 1.1),
                district=district,
            )  # fmt: skip
            operators.append(owner)
            uscc, prefix = owner.uscc, ""
            supplier = rng.choice(suppliers)
            discount = rng.randint(10, 40)
        else:
            uscc = branch[brand].uscc
            prefix = "中国石化" if brand == "sinopec" else "中国石油"
            supplier = suppliers[0] if brand == "sinopec" else suppliers[1]
            discount = 0
        place = f"{prefix}{CITY_NAME[:2]}{_short(district)}"
        name = f"{place}{rng.choice(_STREETS)}加油站"
        while name in station_names:
            name = f"{place}{''.join(rng.sample(_BRAND_CHARS, 2))}加油站"
        station_names.add(name)
        tanks, nozzles = _tanks(rng, daily_l)
        since = start - timedelta(days=rng.randint(200, 6000))
        stations.append(
            Station(
                station_id=f"ST{n:05d}",
                number=n,
                uscc=uscc,
                name=name,
                district_code=district,
                brand=brand,
                lat=lat,
                lon=lon,
                updated_at=ts(since, rng.randrange(8 * 3600, 18 * 3600)),
                tanks=tanks,
                nozzles=nozzles,
                discount_fen=discount,
                supplier=supplier,
            )
        )
    for brand_enterprise in branch.values():
        brand_stations = [s for s in stations if s.uscc == brand_enterprise.uscc]
        liters = sum(t.expected_daily_ml for s in brand_stations for t in s.tanks) / 1000
        brand_enterprise.annual_revenue_fen = max(
            brand_enterprise.annual_revenue_fen, round(liters * 7.5 * 365 * 100)
        )
    # Dishonest stations are busy ones: small gaps are measurable where throughput is large.
    busy = sorted(stations, key=lambda s: -sum(t.expected_daily_ml for t in s.tanks))
    n_dishonest = max(2, round(DISHONEST_SHARE * count))
    chosen = sorted(busy[: max(n_dishonest * 3, n_dishonest)], key=lambda s: s.number)
    for i, s in enumerate(rng.sample(chosen, n_dishonest)):
        s.under_reporting = UNDER_REPORTING[i % len(UNDER_REPORTING)]
    return stations, operators


def _tanks(rng: random.Random, daily_l: float) -> tuple[list[Tank], list[tuple[str, int]]]:
    shares = dict(PRODUCT_SHARES)
    if rng.random() > 0.12:
        shares["0D"] += shares.pop("-10D")  # winter diesel only at a few stations
    for product in ("98", "-10D"):
        if product in shares and daily_l * shares[product] < MIN_TANK_DAILY_LITERS * 1.5:
            shares["92"] += shares.pop(product)
    tanks: list[Tank] = []
    nozzles: list[tuple[str, int]] = []
    for product, share in shares.items():
        product_daily = daily_l * share
        n_tanks = max(1, math.ceil(product_daily * DAYS_OF_STOCK / TANK_SIZES_L[-1]))
        need = product_daily * DAYS_OF_STOCK / n_tanks
        size = next((s for s in TANK_SIZES_L if s >= need), TANK_SIZES_L[-1])
        for _ in range(n_tanks):
            capacity = size * 1000
            tanks.append(
                Tank(
                    tank_id=f"T{len(tanks) + 1:02d}",
                    product=product,
                    capacity_ml=capacity,
                    level_ml=round(capacity * rng.uniform(0.42, 0.85)),
                    expected_daily_ml=round(product_daily / n_tanks * 1000),
                )
            )
            for _ in range(rng.randint(2, 4)):
                nozzles.append((f"{len(nozzles) + 1:02d}", len(tanks) - 1))
    return tanks, nozzles
