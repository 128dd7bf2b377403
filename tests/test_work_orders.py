"""Quality work orders on a real PostgreSQL started by the test (no JVM)."""

from __future__ import annotations

import datetime as dt

import pytest

from citylake.settings import WorkOrderSettings
from quality import orders
from quality.gate import CheckResult, GateResult
from tests.source_db import running_source_db

pytestmark = pytest.mark.stack


def _result(table: str, check: str, bad: int, at: str, examples=("x",)) -> GateResult:
    return GateResult(
        gate="dwd→dws",
        table=table,
        rows=100,
        checks=[
            CheckResult(check, "block", False, bad, float(bad), list(examples)),
            CheckResult("ok_check", "block", True, 0, 0.0, []),
        ],
        at=at,
    )


@pytest.fixture(scope="module")
def settings():
    with running_source_db() as base:
        yield base.model_copy(update={"work_orders": WorkOrderSettings(enabled=True)})


def test_lifecycle_dedup_and_history(settings):
    first = _result("dwd_pay_transaction", "amount_range", 3, "2024-11-05T01:00:00+00:00")
    touched = orders.open_orders([first], run_id="run-1", settings=settings)
    # Only the failed check opens an order; the passed one does not.
    assert [(t.action, t.table, t.check) for t in touched] == [
        ("opened", "dwd_pay_transaction", "amount_range")
    ]
    oid = touched[0].id

    again = _result("dwd_pay_transaction", "amount_range", 7, "2024-11-06T01:00:00+00:00", ["a"])
    other = _result("dwd_tax_monthly", "tax_range", 2, "2024-11-06T01:00:00+00:00")
    touched = orders.open_orders([again, other], run_id="run-2", settings=settings)
    assert [(t.id == oid, t.action) for t in touched] == [(True, "updated"), (False, "opened")]

    order = orders.get(oid, settings=settings)
    assert order["department"] == "市商务局"  # dwd_pay_transaction's contract owner
    assert order["status"] == "open"
    assert order["failures"] == 2
    assert order["unexpected_count"] == 7 and order["sample"] == ["a"]
    assert order["first_seen"].isoformat() == "2024-11-05T01:00:00+00:00"
    assert order["last_seen"].isoformat() == "2024-11-06T01:00:00+00:00"
    assert order["run_id"] == "run-2"

    with pytest.raises(orders.IllegalTransition, match="is open: cannot move to fixed"):
        orders.transition(oid, "fixed", by="张三", settings=settings)
    orders.transition(oid, "acknowledged", by="张三", comment="收到", settings=settings)
    orders.transition(oid, "fixed", by="张三", comment="源系统已修正", settings=settings)
    # Failing again after the fix: back to open, recorded as the gate's move.
    late = _result("dwd_pay_transaction", "amount_range", 1, "2024-11-07T01:00:00+00:00")
    assert orders.open_orders([late], run_id="run-3", settings=settings)[0].action == "reopened"
    for status in ("acknowledged", "fixed", "verified", "closed"):
        orders.transition(oid, status, by="李四", settings=settings)
    with pytest.raises(orders.IllegalTransition, match="closed order stays closed"):
        orders.transition(oid, "open", by="李四", settings=settings)

    events = orders.get(oid, settings=settings)["events"]
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in events] == [
        (None, "open", "quality-gate"),
        ("open", "acknowledged", "张三"),
        ("acknowledged", "fixed", "张三"),
        ("fixed", "open", "quality-gate"),
        ("open", "acknowledged", "李四"),
        ("acknowledged", "fixed", "李四"),
        ("fixed", "verified", "李四"),
        ("verified", "closed", "李四"),
    ]
    assert events[1]["comment"] == "收到" and events[0]["run_id"] == "run-1"

    # After closing, the same check failing again opens a new order.
    new = orders.open_orders([late], run_id="run-4", settings=settings)[0]
    assert new.action == "opened" and new.id != oid

    assert {o["id"] for o in orders.list_orders(status=["closed"], settings=settings)} == {oid}
    taxes = orders.list_orders(department="市税务局", settings=settings)
    assert [(o["table_name"], o["status"]) for o in taxes] == [("dwd_tax_monthly", "open")]
    active = orders.list_orders(status=["open", "acknowledged"], settings=settings)
    assert sorted(o["id"] for o in active) == sorted([new.id, touched[1].id])
    with pytest.raises(orders.OrderNotFound):
        orders.transition(99999, "acknowledged", by="x", settings=settings)


def test_cli_lists_moves_and_refuses(settings, monkeypatch):
    from typer.testing import CliRunner

    from citylake.cli import app
    from citylake.settings import get_settings

    monkeypatch.setenv("CITYLAKE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("CITYLAKE_SOURCE_DB__PORT", str(settings.source_db.port))
    get_settings.cache_clear()
    try:
        failed = _result("dwd_enterprise", "uscc_check", 4, "2024-11-08T01:00:00+00:00")
        oid = orders.open_orders([failed], run_id="cli", settings=settings)[0].id
        runner = CliRunner()
        listed = runner.invoke(app, ["quality", "orders", "list", "--department", "市市场监管局"])
        assert listed.exit_code == 0 and "uscc_check" in listed.output
        moved = runner.invoke(app, ["quality", "orders", "ack", str(oid), "--by", "王五"])
        assert moved.exit_code == 0 and "acknowledged" in moved.output
        refused = runner.invoke(app, ["quality", "orders", "close", str(oid), "--by", "王五"])
        assert refused.exit_code == 2 and "cannot move to closed" in refused.output
        shown = runner.invoke(app, ["quality", "orders", "show", str(oid)])
        assert '"actor": "王五"' in shown.output
    finally:
        get_settings.cache_clear()


def test_the_regulator_report_lists_the_open_orders(settings, tmp_path):
    """The report reads the orders not closed (of its department) from this database."""
    from openpyxl import load_workbook

    from quality.report import write_report

    failed = _result("dwd_social_insurance", "insured_count_range", 6, "2024-11-09T01:00:00+00:00")
    oid = orders.open_orders([failed], run_id="report", settings=settings)[0].id
    lake = settings.model_copy(update={"warehouse": str(tmp_path / "lakehouse")})  # empty
    department = "市人力资源和社会保障局"  # dwd_social_insurance's owner
    xlsx, _ = write_report(
        dt.date(2024, 11, 9), dt.date(2024, 11, 9), department, tmp_path, settings=lake
    )
    sheet = load_workbook(xlsx)["未关闭工单"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1], r[2], r[4], r[6]) for r in rows] == [
        (oid, "待处理", department, "insured_count_range", 6)
    ]  # only this department's; another department's open orders are not listed
