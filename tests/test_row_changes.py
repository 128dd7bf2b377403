"""The rows a fact write commits: old and new rows of some keys compared in Arrow on the driver
(pipelines/dwd/affected.py `row_changes`), two nulls alike as Spark's `<=>` has them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from pipelines import tables
from pipelines.dwd.affected import row_changes

D5, D6 = dt.date(2024, 11, 5), dt.date(2024, 11, 6)


SCHEMA = pa.schema(
    [
        ("txn_id", pa.string()),
        ("booked_date", pa.date32()),
        ("district_code", pa.string()),
        ("refund_of", pa.string()),
    ]
)


def _rows(*rows: tuple) -> pa.Table:
    """Rows of a few of the table's columns, typed as `tables.conform_arrow` types them."""
    return pa.Table.from_pylist([dict(zip(SCHEMA.names, r, strict=True)) for r in rows], SCHEMA)


def test_only_the_rows_that_differ_are_changes() -> None:
    table = tables.contract("dwd_pay_transaction")
    old = _rows(
        ("SAME", D5, "431102", None),
        ("FILLED", D5, "431102", None),
        ("MOVED", D5, "431102", None),
        ("GONE", D5, "431102", None),
    )
    new = _rows(
        ("NEW", D6, "431103", None),
        ("MOVED", D6, "431102", None),
        ("FILLED", D5, "431102", "T1"),
        ("SAME", D5, "431102", None),
    )
    changes = row_changes(old, new, table).to_pylist()
    assert sorted((r["txn_id"], r["booked_date"], r[tables.CHANGE]) for r in changes) == [
        ("FILLED", D5, "update"),  # a null that became a value differs
        ("GONE", D5, "delete"),
        ("MOVED", D5, "delete"),  # it leaves its old day ...
        ("MOVED", D6, "insert"),  # ... for its new one
        ("NEW", D6, "insert"),
    ]
    assert row_changes(old, old, table).num_rows == 0  # nulls alike: nothing to commit
    assert row_changes(old.slice(0, 0), old.slice(0, 0), table).num_rows == 0


def test_nested_columns_are_refused() -> None:
    table = tables.contract("dwd_pay_transaction")
    rows = _rows(("A", D5, "431102", None)).append_column("tags", pa.array([["x"]]))
    with pytest.raises(TypeError, match="flat columns, not \\['tags'\\]"):
        row_changes(rows, rows, table)
