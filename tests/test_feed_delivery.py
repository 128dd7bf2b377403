"""dwd_feed_delivery: the delivery log's rows in one file, rewritten only when a delivery came
in (a build without one leaves its version as it was), from the log version the scorecard's
rows name."""

from __future__ import annotations

from pathlib import Path

import pytest

from citylake.settings import Settings
from pipelines import tables
from pipelines.dwd.feed_delivery import write_feed_deliveries
from pipelines.ingest import ingest_file
from tests.payment_files import TXN_HEADER, registry, txn, write

pytestmark = pytest.mark.spark  # a table's first write creates it by Spark

DAY = "2024-11-29"


def _deliver(lake: Settings, name: str, rows: list[list[str]]) -> str:
    """A transactions file ingested as ingestion does it: its log row a commit of its own."""
    path = write(Path(lake.landing), "pay_transactions", DAY, name, TXN_HEADER, rows)
    return ingest_file(path, "pay_transactions", settings=lake).delivery_id


def _deliveries(lake: Settings) -> tuple[int, dict[str, tuple]]:
    table = tables.contract("dwd_feed_delivery", lake)
    rows = tables.read_native(table, settings=lake).to_pylist()
    version = tables.ensure_native(table, lake).version()
    return version, {r["delivery_id"]: (r["feed"], r["delivered"], r["quarantined"]) for r in rows}


def test_the_deliveries_are_rewritten_in_one_file_only_when_one_came_in(lake: Settings) -> None:
    first = ingest_file(registry(Path(lake.landing), DAY), "merchant_registry", settings=lake)
    # Two sales and a line of two fields, unreadable: quarantined at ingestion.
    sales = _deliver(lake, "a.csv", [txn("T1", "M1", f"{DAY}T10:00:00+08:00", 100), ["T2", "M1"]])
    assert write_feed_deliveries(lake) is True
    version, rows = _deliveries(lake)
    assert rows == {
        first.delivery_id: ("merchant_registry", 2, 0),
        sales: ("pay_transactions", 2, 1),
    }
    files = tables.ensure_native(tables.contract("dwd_feed_delivery", lake), lake).file_uris()
    assert len(files) == 1

    assert write_feed_deliveries(lake) is False  # nothing new: the version stays
    assert _deliveries(lake) == (version, rows)

    more = _deliver(lake, "b.csv", [txn("T3", "M2", f"{DAY}T11:00:00+08:00", 200)])
    assert write_feed_deliveries(lake) is True
    again, rows = _deliveries(lake)
    assert again == version + 1
    assert rows[more] == ("pay_transactions", 1, 0) and len(rows) == 3


def test_the_deliveries_are_those_of_the_log_version_the_scorecard_names(lake: Settings) -> None:
    sales = _deliver(lake, "a.csv", [txn("T1", "M1", f"{DAY}T10:00:00+08:00", 100)])
    pinned = tables.ensure_native(tables.contract("ods_delivery_log", lake), lake).version()
    later = _deliver(lake, "b.csv", [txn("T2", "M1", f"{DAY}T11:00:00+08:00", 100)])
    assert write_feed_deliveries(lake, pinned) is True  # committed after the pin: not yet
    assert set(_deliveries(lake)[1]) == {sales}
    assert write_feed_deliveries(lake) is True  # the next build's pin: the log as it is now
    assert set(_deliveries(lake)[1]) == {sales, later}
