"""Compaction (pipelines/maintenance.py): the small files of row-level fact writes rewritten into
one per partition, with every row and every old version as it was."""

from __future__ import annotations

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from citylake.cli import app
from citylake.settings import Settings
from pipelines import maintenance, tables
from pipelines.dwd import affected
from pipelines.orchestration import MAINTENANCE_DAG, generate
from tests.test_incremental_dwd import D5, D6, _facts
from warehouse_layers.contract import input_roots

pytestmark = pytest.mark.spark


def _files_per_day(table, lake: Settings) -> dict:  # type: ignore[no-untyped-def]
    native = tables.ensure_native(table, lake)
    days: dict = {}
    for add in pa.table(native.get_add_actions(flatten=True)).to_pylist():
        day = add["partition.booked_date"]
        days[day] = days.get(day, 0) + 1
    return days


def _rows(df) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted(tuple(r) for r in df.collect())


def test_compaction_leaves_one_file_a_day_and_every_row_and_version(spark, lake: Settings) -> None:
    table = tables.contract("dwd_pay_transaction", lake)
    # The day's rows by Spark's own writer (INT96 timestamps), then late refunds appended by
    # delta-rs, one small file each, as a city-day's fact write adds them.
    tables.replace(
        _facts(spark, table, [{"txn_id": "A"}, {"txn_id": "B", "booked_date": D6}]),
        table,
        settings=lake,
    )
    for n in range(3):
        refund = _facts(spark, table, [{"txn_id": f"R{n}", "status": "refund", "refund_of": "A"}])
        assert affected.replace_keys(refund, refund, table, lake) == {D5: 1}
    assert _files_per_day(table, lake) == {D5: 4, D6: 1}
    before = tables.ensure_native(table, lake).version()
    rows = _rows(tables.read(spark, table, settings=lake))

    # As the weekly DAG runs it (the settings come from this test's environment).
    compact_task = generate()[MAINTENANCE_DAG].task_dict["compact"]
    done = {c["table"]: c for c in compact_task.python_callable()}
    assert done["dwd_pay_transaction"]["files_removed"] == 4  # D6's single file is left alone
    assert done["dwd_pay_transaction"]["files_added"] == 1
    assert _files_per_day(table, lake) == {D5: 1, D6: 1}
    native = tables.ensure_native(table, lake)
    assert native.version() == before + 1
    assert native.history(1)[0]["operation"] == "OPTIMIZE"
    # Spark reads the same rows, at the new version and by time travel at the old one.
    assert _rows(tables.read(spark, table, settings=lake)) == rows
    assert _rows(tables.read(spark, table, before, lake)) == rows

    again = {c.table: c for c in maintenance.compact(["dwd_pay_transaction"], lake)}
    assert again["dwd_pay_transaction"].files_removed == 0
    assert tables.ensure_native(table, lake).version() == before + 1  # nothing left to do


def test_recorded_versions_are_never_compacted(lake: Settings) -> None:
    contracts = tables.contracts(lake)
    names = {t.name for t in maintenance.compactable(contracts)}
    assert {"dwd_pay_transaction", "dwd_fuel_sale", "dws_trade_merchant_daily"} <= names
    # A build writes its ODS versions on every ADS row; the scorecard its inputs' roots'.
    assert not {n for n in names if n.startswith("ods_")}
    assert not names & input_roots("ads_quality_scorecard", contracts)
    assert "dwd_quarantine" not in names
    result = CliRunner().invoke(app, ["maintain", "compact", "--table", "ods_pay_transactions"])
    assert result.exit_code == 2
    assert "not compactable: ods_pay_transactions" in result.output
