"""The `citylake` command as a user runs it: ingest and build. The demo's test is the cockpit's
stack test (tests/test_cockpit.py): `citylake demo` on MinIO up to the rendered dashboards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citylake.cli import app
from citylake.settings import Settings
from tests.payment_files import TXN_HEADER, merchant, registry, txn, write

pytestmark = pytest.mark.spark
runner = CliRunner()


def test_ingest_json_and_build(spark, lake: Settings) -> None:
    landing = Path(lake.landing)
    registry_file = registry(landing, rows=[merchant("M1", "431102")])
    txns = write(
        landing,
        "pay_transactions",
        "2024-11-05",
        "t.csv",
        TXN_HEADER,
        [txn(f"T{i}", "M1", "2024-11-05T10:00:00+08:00", 100) for i in range(30)],
    )
    assert runner.invoke(app, ["ingest", "merchant_registry", str(registry_file)]).exit_code == 0
    result = runner.invoke(app, ["ingest", "pay_transactions", str(txns.parent), "--json"])
    assert result.exit_code == 0, result.output
    (delivery,) = json.loads(result.output)
    assert (delivery["delivered"], delivery["loaded"], delivery["quarantined"]) == (30, 30, 0)
    assert delivery["business_date"] == "2024-11-05"

    built = runner.invoke(app, ["build", "--from", "2024-11-05", "--to", "2024-11-05"])
    assert built.exit_code == 0, built.output
    assert "ads_trade_daily" in built.output and lake.warehouse in built.output


def test_ingest_of_a_rejected_file_exits_nonzero_with_the_reason(spark, lake: Settings) -> None:
    bad = write(
        Path(lake.landing),
        "merchant_registry",
        "2024-11-05",
        "r.csv",
        ["merchant_id", "name"],
        [["M1", "x"]],
    )
    result = runner.invoke(app, ["ingest", "merchant_registry", str(bad)])
    assert result.exit_code == 1
    assert "header does not match the merchant_registry contract" in result.output


def test_deliveries_by_feed_and_department_export_to_xlsx(
    spark, lake: Settings, tmp_path: Path
) -> None:
    import openpyxl

    landing = Path(lake.landing)
    runner.invoke(
        app,
        [
            "ingest",
            "merchant_registry",
            str(registry(landing, rows=[merchant("M1", "431102")])),
        ],
    )
    runner.invoke(
        app,
        [
            "ingest",
            "pay_transactions",
            str(
                write(
                    landing,
                    "pay_transactions",
                    "2024-11-06",
                    "t.csv",
                    TXN_HEADER,
                    [txn("T1", "M1", "2024-11-06T10:00:00+08:00", 100), ["T2", "M1"]],
                )
            ),
        ],
    )

    result = runner.invoke(app, ["deliveries", "--from", "2024-11-06", "--json"])
    (only,) = json.loads(result.output)
    assert (only["feed"], only["delivered"], only["loaded"], only["quarantined"]) == (
        "pay_transactions",
        2,
        1,
        1,
    )
    by_department = runner.invoke(app, ["deliveries", "--department", "市商务局", "--json"])
    assert len(json.loads(by_department.output)) == 2
    none = runner.invoke(app, ["deliveries", "--feed", "fuel_sales", "--json"])
    assert json.loads(none.output) == []

    out = tmp_path / "对账.xlsx"
    assert runner.invoke(app, ["deliveries", "--xlsx", str(out)]).exit_code == 0
    sheet = openpyxl.load_workbook(out).active
    rows = list(sheet.values)
    assert rows[0][:3] == ("业务日期", "数据接口", "责任部门")
    assert [r[1] for r in rows[1:3]] == ["pay_transactions", "merchant_registry"]
    assert rows[-1][0] == "合计" and rows[-1][7:10] == (3, 2, 1)


def test_unknown_feed_or_table_is_a_clear_error(tmp_path: Path) -> None:
    delivered = tmp_path / "x.csv"
    delivered.write_text("a\n1\n")
    result = runner.invoke(app, ["ingest", "pay_transaction", str(delivered)])
    assert result.exit_code == 2
    assert "unknown feed 'pay_transaction'" in result.output and "pay_transactions" in result.output
    ddl = runner.invoke(app, ["contracts", "ddl", "ads_nothing"])
    assert ddl.exit_code == 2 and "no contract for table 'ads_nothing'" in ddl.output
