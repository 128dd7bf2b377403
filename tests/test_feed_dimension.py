"""dwd_dim_feed: one row per feed from its contract, rewritten only when the contracts change."""

from __future__ import annotations

import pytest

from citylake.settings import Settings
from pipelines import tables
from pipelines.dwd.feed import feed_rows, write_feed_dimension


def test_every_feed_contract_is_a_row_with_its_deadline() -> None:
    contracts = tables.contracts()
    rows = {r["feed"]: r for r in feed_rows(contracts).to_pylist()}
    assert sorted(rows) == sorted(t.feed.name for t in contracts.values() if t.feed)
    assert rows["pay_transactions"] == {
        "feed": "pay_transactions",
        "ods_table": "ods_pay_transactions",
        "owner_department": "市商务局",
        "channel": "database",
        "schedule": "@daily",
        "period": "day",
        "deadline_days": 1,
        "deadline_time": "06:00",
        "deadline_utc_offset": "+08:00",
        "deadline_seconds": 86400 + 6 * 3600 - 8 * 3600,  # T+1 06:00 +08:00 = T 22:00 UTC
    }
    tax = rows["gov_tax_monthly"]
    assert (tax["owner_department"], tax["period"], tax["deadline_days"]) == (
        "市税务局",
        "month",
        20,
    )


@pytest.mark.spark
def test_the_dimension_is_rewritten_only_when_the_contracts_change(spark, lake: Settings) -> None:
    table = tables.contract("dwd_dim_feed")
    assert write_feed_dimension(lake) is True
    version = tables.version(spark, table, lake)
    assert write_feed_dimension(lake) is False  # same contracts: no new version
    assert tables.version(spark, table, lake) == version
    read = tables.read(spark, table, settings=lake)
    assert read.count() == feed_rows(tables.contracts()).num_rows
