"""How a delivery lies in ODS: one Parquet file per delivery, in row groups Spark can share out.

Spark gives a file's row groups to its tasks; a file in one row group is read by one task, so a
city-day's work on its biggest delivery (indexing the keys of 305 k transactions, normalizing
them) ran on one core of two (issue #4, pipelines/tables.py ODS_ROW_GROUP).
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citylake.settings import Settings
from pipelines import tables

pytestmark = pytest.mark.spark  # the table is created from its contract by Spark


def test_a_delivery_is_written_in_row_groups_of_a_bounded_size(spark, lake: Settings) -> None:
    table = tables.contract("ods_quarantine", lake)
    lines = 2 * tables.ODS_ROW_GROUP + 1_000
    rows = pa.table(
        {
            "feed": pa.array(["pay_transactions"] * lines),
            "delivery_id": pa.array(["d1"] * lines),
            "business_date": pa.array([dt.date(2024, 11, 5)] * lines),
            "source_file": pa.array(["txn.csv"] * lines),
            "source_line": pa.array(range(1, lines + 1), pa.int64()),
            "reason_code": pa.array(["bad_amount"] * lines),
            "detail": pa.array(["amount is not a number"] * lines),
            "raw_record": pa.array([f'{{"amount": "x{i}"}}' for i in range(lines)]),
            "quarantined_at": pa.repeat(
                pa.scalar(dt.datetime(2024, 11, 6, tzinfo=dt.UTC), pa.timestamp("us", "UTC")), lines
            ),
        }
    )
    assert tables.append_native(rows, table, txn=("test-delivery", 1), settings=lake)

    files = tables.ensure_native(table, lake).file_uris()
    assert len(files) == 1  # the delivery's one file
    meta = pq.ParquetFile(files[0].removeprefix("file://")).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [tables.ODS_ROW_GROUP, tables.ODS_ROW_GROUP, 1_000]
