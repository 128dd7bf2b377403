"""The enterprise months are built month by month (the contract's `month_column`): every
change to a month's inputs must name that month, or its row goes stale.

Three days of deliveries change months far from the days built: a late order of October, a tax
filing of May 2023 (before the daily models' start) and its correction a day later, and a
merchant registered on the 7th whose order of September was delivered on the 5th (a merchant's
first version holds from the beginning of time, so the order binds to its enterprise). Built
day by day, the table must equal its query over all history, and hold the hand-computed months.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from citylake.settings import Settings
from pipelines import tables
from pipelines.build import build
from pipelines.dwd.merchant import BINDING, binding_changes
from pipelines.ingest import ingest_file
from pipelines.modeling.project import context
from pipelines.modeling.runner import further_plans
from tests.payment_files import MERCHANT_HEADER, TXN_HEADER, merchant, txn, write
from tests.test_gov_dwd import ACME, INN

D5, D6, D7 = (dt.date(2024, 11, d) for d in (5, 6, 7))
ORDER_HEADER = [c.name for c in tables.contract("ods_merchant_orders").feed_columns]
TAX_HEADER = [c.name for c in tables.contract("ods_gov_tax_monthly").feed_columns]


def _bound(mid: str, code: str, updated: str = "2024-11-01T09:00:00+08:00") -> list[str]:
    row = merchant(mid, "431102", updated=updated)
    row[1] = code
    return row


def _order(oid: str, mid: str, time: str, gmv: int) -> list[str]:
    return [oid, mid, "meituan", time, str(gmv), "0", "paid", time]


def _filing(period: str, revenue: str, updated: str) -> list[str]:
    return [ACME, period, revenue, "1,300.00", "250.00", "¥1,706.00", updated]


DELIVERIES = {
    D5: {
        "merchant_registry": (MERCHANT_HEADER, [_bound("M1", ACME), merchant("M2", "431103")]),
        "pay_transactions": (TXN_HEADER, [txn("T1", "M1", "2024-11-05T12:00:00+08:00", 1000)]),
        "merchant_orders": (
            ORDER_HEADER,
            [
                _order("O1", "M1", "2024-10-20T12:00:00+08:00", 4000),  # late: October
                _order("O2", "M1", "2024-11-05T12:00:00+08:00", 500),
                _order("O3", "M3", "2024-09-15T12:00:00+08:00", 700),  # M3 registers on the 7th
                _order("O4", "M2", "2024-10-25T12:00:00+08:00", 300),  # before M2's uscc
            ],
        ),
        "gov_tax_monthly": (
            TAX_HEADER,
            [_filing("202305", "100,000.00", "2023-06-10T10:00:00+08:00")],
        ),
    },
    D6: {
        "pay_transactions": (TXN_HEADER, [txn("T2", "M1", "2024-11-06T12:00:00+08:00", 200)]),
        # 更正申报: May 2023 again, with the true revenue
        "gov_tax_monthly": (
            TAX_HEADER,
            [_filing("202305", "150,000.00", "2024-11-06T09:00:00+08:00")],
        ),
    },
    D7: {
        "merchant_registry": (
            MERCHANT_HEADER,
            [
                _bound("M3", ACME, updated="2024-11-07T08:00:00+08:00"),
                _bound("M2", INN, updated="2024-11-07T08:00:00+08:00"),  # from the 7th on
            ],
        ),
    },
}


def _deliver(lake: Settings, day: dt.date) -> None:
    for feed, (header, rows) in DELIVERIES[day].items():
        ingest_file(write(Path(lake.landing), feed, str(day), f"{feed}.csv", header, rows), feed)


def _months(spark, lake: Settings) -> list[tuple]:
    table = tables.read(spark, tables.contract("dws_enterprise_monthly", lake), settings=lake)
    return sorted(tuple(map(str, r)) for r in table.collect())


def _whole_history(spark, lake: Settings) -> list[tuple]:
    """The model's query over every month, as the FULL model computed it."""
    model = context(lake).get_model("dws.dws_enterprise_monthly")
    query = model.render_query(start="2000-01-01", end=D7, execution_time=D7 + dt.timedelta(1))
    return sorted(tuple(map(str, r)) for r in spark.sql(query.sql(dialect="spark")).collect())


@pytest.mark.spark
def test_every_change_restates_its_enterprise_month(spark, lake: Settings) -> None:
    restated = {}
    for day in (D5, D6, D7):
        _deliver(lake, day)
        restated[day] = build(day, day, settings=lake).restated
    # The months beyond the day built: October's and September's orders, May 2023's filing;
    # on the 7th the orders M3's first version binds (M2's new uscc holds from the 7th only).
    assert dt.date(2024, 10, 20) in restated[D5]["dwd_merchant_order"]
    assert dt.date(2023, 5, 31) in restated[D6]["dwd_tax_monthly"]
    assert restated[D7]["dwd_merchant"] == {dt.date(2024, 9, 15)}

    months = _months(spark, lake)
    assert months == _whole_history(spark, lake)
    by_month = {(r[0], r[1]): r[2:] for r in months}
    # month, uscc -> revenue, tax, headcount, payments, GMV, merchants
    assert by_month == {
        ("2023-05-01", ACME): ("150000.00", "1706.00", "None", "0", "0", "0"),
        ("2024-09-01", ACME): ("None", "None", "None", "0", "700", "1"),
        ("2024-10-01", ACME): ("None", "None", "None", "0", "4000", "1"),
        ("2024-11-01", ACME): ("None", "None", "None", "1200", "500", "1"),
    }


def test_further_days_are_restated_for_their_tables_alone() -> None:
    day = dt.date(2024, 11, 7)
    runs = [(day, day)]
    restated = {
        "dwd_pay_transaction": {dt.date(2024, 10, 3), dt.date(2024, 10, 9)},
        "dwd_tax_monthly": {dt.date(2024, 5, d) for d in range(1, 32)},
        "dwd_merchant_order": {dt.date(2024, 4, 2), dt.date(2024, 11, 2), dt.date(2024, 12, 1)},
        "dwd_gate_outcome": {day},  # within the runs: nothing further
        "dwd_enterprise": {dt.date(2024, 1, 1)},  # not rebuilt: not restated
    }
    rebuilt = ["dwd_pay_transaction", "dwd_tax_monthly", "dwd_merchant_order", "dwd_gate_outcome"]
    by_month = ["dwd_tax_monthly", "dwd_merchant_order"]  # only monthly or FULL models read them
    # One plan per run of further days, for the tables that changed in it. A table read by
    # month only is restated by whole months (April's order restates April), and not in a
    # month the runs restate (November's order). Days after the build's last one are not
    # built yet: their own build computes them (December's order).
    assert further_plans(rebuilt, runs, restated, day, by_month) == [
        (["dwd_tax_monthly", "dwd_merchant_order"], dt.date(2024, 4, 1), dt.date(2024, 5, 31)),
        (["dwd_pay_transaction"], dt.date(2024, 10, 3), dt.date(2024, 10, 3)),
        (["dwd_pay_transaction"], dt.date(2024, 10, 9), dt.date(2024, 10, 9)),
    ]


def _state(*versions: tuple[str, str, str, str | None]) -> pa.Table:
    rows = [
        (m, dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b), u)
        for m, a, b, u in versions
    ]
    return pa.table(dict(zip(BINDING, map(list, zip(*rows, strict=True)), strict=True)))


def test_a_binding_changes_where_the_uscc_in_force_differs() -> None:
    start, end = "1900-01-01", "9999-12-31"
    before = _state(
        ("M1", start, end, "U1"),
        ("M2", start, end, None),
        ("M4", start, end, "U4"),
    )
    after = _state(
        ("M1", start, "2024-11-06T04:00", "U1"),  # moved district: the same uscc
        ("M1", "2024-11-06T04:00", end, "U1"),
        ("M2", start, "2024-11-07T00:00", None),  # bound from the 7th
        ("M2", "2024-11-07T00:00", end, "U2"),
        ("M3", start, end, "U3"),  # new, with a uscc: from the beginning
        ("M4", start, end, "U4"),
        ("M5", start, end, None),  # new, with no uscc: binds nothing either way
    )
    assert binding_changes(before, after) == {
        "M2": dt.date(2024, 11, 7),
        "M3": dt.date(1900, 1, 1),
    }
