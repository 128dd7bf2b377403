"""dwd_feed_delivery: the delivery log's rows in one file, rewritten only when a delivery came
in (a build without one leaves its version as it was)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from citylake.settings import Settings
from pipelines import tables
from pipelines.dwd.feed_delivery import write_feed_deliveries


def _log(lake: Settings, delivery_id: str, feed: str, day: dt.date, delivered: int) -> None:
    """One committed delivery's log row, as ingestion appends it (a commit of its own)."""
    log = tables.contract("ods_delivery_log", lake)
    landed = dt.datetime.combine(day, dt.time(22, 0), dt.UTC)
    row = {
        "feed": feed,
        "delivery_id": delivery_id,
        "channel": "landing",
        "source": f"{feed}/{day}.csv",
        "owner_department": "市商务局",
        "business_date": day,
        "source_format": "csv/utf-8",
        "delivered": delivered,
        "loaded": delivered - 1,
        "quarantined": 1,
        "started_at": landed - dt.timedelta(seconds=5),
        "finished_at": landed,
        "status": "partially_loaded",
        "error": None,
        "cursor": None,
    }
    rows = pa.Table.from_pylist([row], schema=tables.arrow_schema(log))
    assert tables.append_native(rows, log, txn=(delivery_id, 1), settings=lake)


def _deliveries(lake: Settings) -> tuple[int, list[tuple]]:
    table = tables.contract("dwd_feed_delivery", lake)
    rows = tables.read_native(table, settings=lake).sort_by("delivery_id").to_pylist()
    version = tables.ensure_native(table, lake).version()
    return version, [(r["delivery_id"], r["feed"], r["delivered"], r["quarantined"]) for r in rows]


def test_the_deliveries_are_rewritten_in_one_file_only_when_one_came_in(lake: Settings) -> None:
    day = dt.date(2024, 11, 29)
    _log(lake, "P1", "pay_transactions", day, 100)
    _log(lake, "R1", "merchant_registry", day, 8)
    assert write_feed_deliveries(lake) is True
    version, rows = _deliveries(lake)
    assert rows == [("P1", "pay_transactions", 100, 1), ("R1", "merchant_registry", 8, 1)]
    files = tables.ensure_native(tables.contract("dwd_feed_delivery", lake), lake).file_uris()
    assert len(files) == 1

    assert write_feed_deliveries(lake) is False  # nothing new: the version stays
    assert _deliveries(lake) == (version, rows)

    _log(lake, "P2", "pay_transactions", day + dt.timedelta(days=1), 50)
    assert write_feed_deliveries(lake) is True
    again, rows = _deliveries(lake)
    assert again == version + 1
    assert [r[0] for r in rows] == ["P1", "P2", "R1"]


def test_the_deliveries_are_those_of_the_log_version_the_scorecard_names(lake: Settings) -> None:
    day = dt.date(2024, 11, 29)
    _log(lake, "P1", "pay_transactions", day, 100)
    pinned = tables.ensure_native(tables.contract("ods_delivery_log", lake), lake).version()
    _log(lake, "P2", "pay_transactions", day, 50)  # committed after the build pinned the log
    assert write_feed_deliveries(lake, pinned) is True
    assert [r[0] for r in _deliveries(lake)[1]] == ["P1"]
    assert write_feed_deliveries(lake) is True  # the next build's pin: the log as it is now
    assert [r[0] for r in _deliveries(lake)[1]] == ["P1", "P2"]
