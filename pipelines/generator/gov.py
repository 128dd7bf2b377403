"""Government feeds of the demo city: the market-entity registry, monthly tax and insurance.

They come from the data-sharing exchange, which serves every record with the producer's
`updated_at`; a day's rows are the records changed that day. The first day is the full pull:

- `gov_enterprise_registry`: every enterprise (closed ones too) on the first day; afterwards
  the day's new enterprises, closures (注销/吊销/迁出; a company whose only merchants close often
  deregisters the same day) and changed records (capital, address, 存续/在业).
- `gov_tax_monthly`: one filing per enterprise and month (period YYYYMM), filed on the
  enterprise's own day between the 1st and 15th of the following month (申报期). Some filings
  are corrected later (更正申报): the first version under-declares revenue, a later delivery of
  the same (uscc, period) carries the true figures and supersedes it. Planted near-threshold
  enterprises are never corrected, so their 12-month sums are exact.
- `gov_social_insurance`: insured headcount per enterprise and month, filed between the 6th and
  20th of the following month; a few are corrected later too.

The first day also carries the past `history_months` months of filings (their `updated_at` is
when they were filed), so 12-month indicators have a full year from the first day on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from pipelines.generator.city import (
    ACTIVITIES,
    OTHER_ACTIVITY_WEIGHTS,
    Enterprise,
    World,
    address,
    district_weights,
    new_enterprise,
)
from pipelines.generator.codes import rng_for, ts
from pipelines.generator.payment import _Merchant

HISTORY_MONTHS = 12
NEW_RATE = 0.0008  # new enterprises per active enterprise and day
CLOSE_RATE = 0.0003  # closures per active enterprise and day
CHANGE_RATE = 0.0006  # changed records per active enterprise and day
FOLLOW_MERCHANT_CLOSE = 0.5  # a company whose merchants all closed deregisters that day
TAX_CORRECTION_RATE = 0.02
SI_CORRECTION_RATE = 0.01
SURCHARGE = 0.12  # 城建税 7 % + 教育费附加 3 % + 地方教育附加 2 % of VAT
STAMP_DUTY = 0.0003  # 印花税 on sales contracts, roughly
SMALL_VAT_EXEMPT_FEN = 10_000_000  # 小规模纳税人: monthly sales up to 10 万元 pay no VAT
SMALL_PROFIT_LIMIT_FEN = 5_000_000_000  # below 5000 万 a year: 小型微利 rate on profit
OFFICE_HOURS = (8 * 3600 + 1800, 17 * 3600 + 1800)


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year}{self.month:02d}"

    def shift(self, months: int) -> Period:
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.shift(1).first_day - timedelta(days=1)


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def tax_row(e: Enterprise, period: Period, revenue_fen: int, updated_at: str) -> list[str]:
    """A gov_tax_monthly row: VAT, corporate income tax and the total from the revenue."""
    small = e.vat_rate <= 0.01
    vat = 0 if small and revenue_fen <= SMALL_VAT_EXEMPT_FEN else round(revenue_fen * e.vat_rate)
    cit_rate = 0.05 if e.annual_revenue_fen < SMALL_PROFIT_LIMIT_FEN else 0.25
    if e.uscc.startswith("92"):
        cit_rate = 0.0  # 个体工商户 pay personal income tax on business income, not CIT
    cit = round(revenue_fen * e.profit_margin * cit_rate)
    total = vat + cit + round(vat * SURCHARGE) + round(revenue_fen * STAMP_DUTY)
    return [e.uscc, str(period), yuan(revenue_fen), yuan(vat), yuan(cit), yuan(total), updated_at]


def _active_share(e: Enterprise, period: Period) -> float:
    """Share of `period` the enterprise existed (0 when it did not file at all)."""
    first, last = period.first_day, period.last_day
    begin = max(first, e.established)
    end = min(last, e.closed_on - timedelta(days=1)) if e.closed_on else last
    if end < begin:
        return 0.0
    return ((end - begin).days + 1) / ((last - first).days + 1)


class GovRun:
    """The government feeds of a run, one day at a time (call `day` for 0, 1, 2, … in order)."""

    def __init__(
        self, world: World, seed: int, start: date, days: int, history_months: int = HISTORY_MONTHS
    ) -> None:
        self.world, self.seed, self.start = world, seed, start
        self.end = start + timedelta(days=days - 1)
        self.next_period = Period.of(start).shift(-history_months)
        self.by_uscc = {e.uscc: e for e in world.enterprises}
        self.names = {e.name for e in world.enterprises}
        # Filings waiting for their delivery day: date -> [(updated_at, uscc, row, correction)].
        self.tax_due: dict[date, list[_Filing]] = {}
        self.si_due: dict[date, list[_Filing]] = {}
        self.truth: dict[str, int] = {}

    def day(
        self, d: int, day: date, closing: list[_Merchant]
    ) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
        """(gov_enterprise_registry, gov_tax_monthly, gov_social_insurance) rows of the day;
        `closing` are the merchants that close on this day."""
        self.truth = dict.fromkeys(
            ("new", "closed", "changed", "tax_corrections", "si_corrections"), 0
        )
        registry = self._registry(d, day, closing)
        while self.next_period < Period.of(day):  # filed in the month after the period
            self._file(self.next_period)
            self.next_period = self.next_period.shift(1)
        tax = self._deliver(self.tax_due, d, day, "tax_corrections")
        social = self._deliver(self.si_due, d, day, "si_corrections")
        return registry, tax, social

    def _deliver(
        self, due: dict[date, list[_Filing]], d: int, day: date, counter: str
    ) -> list[list[str]]:
        dates = [k for k in due if k <= day] if d == 0 else [day] if day in due else []
        filings = [f for k in dates for f in due.pop(k)]
        filings.sort(key=lambda f: (f.updated_at, f.uscc))
        self.truth[counter] += sum(f.correction for f in filings)
        return [f.row for f in filings]

    # -- registry ---------------------------------------------------------------------------

    def _registry(self, d: int, day: date, closing: list[_Merchant]) -> list[list[str]]:
        enterprises = self.world.enterprises
        if d == 0:
            return [e.row() for e in sorted(enterprises, key=lambda e: e.uscc)]
        rng = rng_for(self.seed, "gov-registry", d)
        changed: dict[str, Enterprise] = {}
        merchant_of = {m.merchant_id: m for m in self.world.merchants}
        for m in closing:
            e = self.by_uscc.get(m.uscc)
            follows = rng.random() < FOLLOW_MERCHANT_CLOSE
            if e is None or not e.active or not follows:
                continue
            if all(merchant_of[mid].closed_day is not None for mid in e.merchants):
                self._close(rng, e, day, "注销")
                changed[e.uscc] = e
        protected = set(self.world.candidates) | {s.uscc for s in self.world.stations}
        protected |= set(self.world.suppliers)
        others = [
            e for e in enterprises if e.active and not e.merchants and e.uscc not in protected
        ]
        for e in rng.sample(others, min(len(others), _count(rng, CLOSE_RATE * len(others)))):
            self._close(rng, e, day, rng.choice(("注销", "注销", "注销", "吊销", "迁出")))
            changed[e.uscc] = e
        active = [e for e in enterprises if e.active and e.uscc not in changed]
        for e in rng.sample(active, min(len(active), _count(rng, CHANGE_RATE * len(active)))):
            what = rng.random()
            if what < 0.4:
                e.reg_capital_wan = e.reg_capital_wan * rng.choice((1.5, 2, 5))  # 增资
            elif what < 0.7:
                e.address = address(rng, e.district_code)  # moved within its district
            else:
                e.status = "在业" if e.status == "存续" else "存续"
            e.updated_at = ts(day, rng.randrange(*OFFICE_HOURS))
            changed[e.uscc] = e
            self.truth["changed"] += 1
        codes, weights = district_weights()
        kinds, kind_weights = list(OTHER_ACTIVITY_WEIGHTS), list(OTHER_ACTIVITY_WEIGHTS.values())
        n_active = sum(e.active for e in enterprises)
        for _ in range(_count(rng, NEW_RATE * n_active)):
            industry = rng.choices(kinds, kind_weights)[0]
            activity = ACTIVITIES[industry]
            e = new_enterprise(
                rng, industry, codes, weights, self.start, self.world.taken_usccs, self.names,
                established=day,
                revenue_wan=activity.threshold_wan * 0.05 * rng.lognormvariate(0, 0.8),
            )  # fmt: skip
            e.status = "存续"
            e.updated_at = ts(day, rng.randrange(*OFFICE_HOURS))
            enterprises.append(e)
            self.by_uscc[e.uscc] = e
            changed[e.uscc] = e
            self.truth["new"] += 1
        ordered = sorted(changed.values(), key=lambda e: (e.updated_at, e.uscc))
        return [e.row() for e in ordered]

    def _close(self, rng: random.Random, e: Enterprise, day: date, status: str) -> None:
        e.status = status
        e.closed_on = day
        e.updated_at = ts(day, rng.randrange(*OFFICE_HOURS))
        self.truth["closed"] += 1

    # -- monthly filings ---------------------------------------------------------------------

    def _file(self, period: Period) -> None:
        """Schedule every enterprise's tax and social insurance filing of `period`."""
        tax_rng = rng_for(self.seed, "tax", period)
        si_rng = rng_for(self.seed, "social-insurance", period)
        following = period.shift(1)
        for e in self.world.enterprises:
            # Draw everything up front, so a run's length never shifts the random streams
            # (random() scaled by hand: randint is slow for 12 draws x every enterprise x month).
            t = tax_rng.random
            at, later_at = _office(t()), _office(t())
            corrected, lag, under = t() < TAX_CORRECTION_RATE, 3 + int(t() * 43), 0.85 + 0.12 * t()
            u = si_rng.random
            si_at, si_later_at = _office(u()), _office(u())
            si_corrected, si_lag = u() < SI_CORRECTION_RATE, 3 + int(u() * 28)
            drift, si_under = int(u() * 5) - 2, 1 + int(u() * 3)
            share = _active_share(e, period)
            if share == 0:
                continue
            revenue = round(e.monthly_revenue_fen(period.month) * share)
            filed = date(following.year, following.month, e.filing_day)
            corrected_on = filed + timedelta(days=lag)
            if corrected and e.uscc not in self.world.candidates and corrected_on <= self.end:
                first = tax_row(e, period, round(revenue * under), ts(filed, at))
                _due(self.tax_due, filed, first)
                true = tax_row(e, period, revenue, ts(corrected_on, later_at))
                _due(self.tax_due, corrected_on, true, correction=True)
            else:
                _due(self.tax_due, filed, tax_row(e, period, revenue, ts(filed, at)))
            if not e.insured:
                continue
            headcount = max(1, e.headcount + drift)
            si_filed = date(following.year, following.month, min(20, e.filing_day + 5))
            si_corrected_on = si_filed + timedelta(days=si_lag)
            filed_at = ts(si_filed, si_at)
            if si_corrected and si_corrected_on <= self.end:
                first_count = max(1, headcount - si_under)  # employees reported late (补报)
                _due(self.si_due, si_filed, [e.uscc, str(period), str(first_count), filed_at])
                true = [e.uscc, str(period), str(headcount), ts(si_corrected_on, si_later_at)]
                _due(self.si_due, si_corrected_on, true, correction=True)
            else:
                _due(self.si_due, si_filed, [e.uscc, str(period), str(headcount), filed_at])


@dataclass(frozen=True)
class _Filing:
    updated_at: str
    uscc: str
    row: list[str]
    correction: bool


def _due(
    due: dict[date, list[_Filing]], day: date, row: list[str], *, correction: bool = False
) -> None:
    due.setdefault(day, []).append(_Filing(row[-1], row[0], row, correction))


def _office(u: float) -> int:
    """A second of office hours from a uniform draw."""
    return OFFICE_HOURS[0] + int(u * (OFFICE_HOURS[1] - OFFICE_HOURS[0]))


def _count(rng: random.Random, expected: float) -> int:
    """A whole number of events with mean `expected`."""
    return int(expected) + (rng.random() < expected % 1)
