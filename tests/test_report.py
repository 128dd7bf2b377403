"""The regulator report (quality/report.py) on a small warehouse with planted defects, written
by delta-rs (no JVM): the xlsx and docx are read back with openpyxl and python-docx and carry
the figures counted by hand below, Chinese headers and their charts.

The period is 2024-11-05 … 07 (D5 … D7); rows of D4 and before are planted outside it.
Scorecard (feed, day: delivered, loaded, quarantined, completeness, validity, timeliness):
  pay_transactions   (市商务局)     D5 100 90 10 .95 .90 1 | D6 0 0 0 – – 0 | D7 50 50 0 1 1 1
  fuel_sales         (市商务局)     D5 100 100 0 1 1 0 (late) | D6, D7 100 100 0 1 1 1
  gov_enterprise_registry (市市场监管局) D5 20 15 5 .90 .75 1 | D7 30 30 0 1 1 1
  pay_transactions D4 999 … (outside the period)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from docx import Document
from openpyxl import load_workbook
from openpyxl.chart import LineChart

from citylake.settings import Settings
from pipelines import tables
from quality.reasons import REASONS_ZH
from quality.report import gather, summary_zh, write_report
from quality.report_xlsx import OVERVIEW_HEADER_ROW

D4, D5, D6, D7 = (dt.date(2024, 11, d) for d in (4, 5, 6, 7))
COMMERCE, MARKET = "市商务局", "市市场监管局"
PAY = "一码付交易流水(pay_transactions)"
FUEL = "加油机销售流水(fuel_sales)"
GOV = "企业法人登记(gov_enterprise_registry)"


def _defaults(type_: str):
    return {
        "string": "x",
        "bigint": 0,
        "int": 0,
        "double": 0.0,
        "boolean": True,
        "date": D5,
        "timestamp": dt.datetime(2024, 11, 8, tzinfo=dt.UTC),
        "array<string>": [],
    }[type_]


def _write(settings: Settings, name: str, rows: list[dict]) -> None:
    """Rows of a table at its warehouse path; columns not given take a filler value."""
    table = tables.contract(name, settings)
    full = [{c.name: r.get(c.name, _defaults(c.type)) for c in table.columns} for r in rows]
    data = pa.Table.from_pylist(full, schema=tables.arrow_schema(table))
    write_deltalake(tables.table_path(table, settings), data)


def _card(feed, department, day, delivered, loaded, completeness, validity, timeliness):
    return {
        "biz_date": day,
        "feed": feed,
        "owner_department": department,
        "delivered": delivered,
        "loaded": loaded,
        "quarantined": delivered - loaded,
        "completeness": completeness,
        "validity": validity,
        "timeliness": timeliness,
        "checks_passed": 1,
        "checks_failed": 0,
    }


def _outcome(at: str, gate: str, table: str, feeds: list[str], days, check: str, ok: bool):
    return {
        "run_at": dt.datetime.fromisoformat(at),
        "gate": gate,
        "table_name": table,
        "feeds": feeds,
        "date_from": days[0],
        "date_to": days[1],
        "check_name": check,
        "severity": "block",
        "success": ok,
        "rows_checked": 20,
        "unexpected_count": 0 if ok else 5,
        "unexpected_percent": 0.0 if ok else 25.0,
    }


@pytest.fixture
def warehouse(lake: Settings) -> Settings:
    pay, fuel, gov = "pay_transactions", "fuel_sales", "gov_enterprise_registry"
    _write(
        lake,
        "ads_quality_scorecard",
        [
            _card(pay, COMMERCE, D4, 999, 0, 0.0, 0.0, 0.0),
            _card(pay, COMMERCE, D5, 100, 90, 0.95, 0.90, 1.0),
            _card(pay, COMMERCE, D6, 0, 0, None, None, 0.0),
            _card(pay, COMMERCE, D7, 50, 50, 1.0, 1.0, 1.0),
            _card(fuel, COMMERCE, D5, 100, 100, 1.0, 1.0, 0.0),
            _card(fuel, COMMERCE, D6, 100, 100, 1.0, 1.0, 1.0),
            _card(fuel, COMMERCE, D7, 100, 100, 1.0, 1.0, 1.0),
            _card(gov, MARKET, D5, 20, 15, 0.90, 0.75, 1.0),
            _card(gov, MARKET, D7, 30, 30, 1.0, 1.0, 1.0),
        ],
    )
    share = "quarantined share <= 5%"
    _write(
        lake,
        "dwd_gate_outcome",
        [
            # D5's reject share failed on the first run; a later run over D5…D7 passed it.
            _outcome("2024-11-06T01:00:00+00:00", "ods→dwd", "ods_pay_transactions", [pay],
                     (D5, D5), share, False),
            _outcome("2024-11-06T01:00:00+00:00", "dwd→dws", "dwd_pay_transaction",
                     ["merchant_registry", pay], (D5, D5), "amount_fen not null", True),
            _outcome("2024-11-08T01:00:00+00:00", "ods→dwd", "ods_pay_transactions", [pay],
                     (D5, D7), share, True),
            _outcome("2024-11-06T02:00:00+00:00", "ods→dwd", "ods_gov_enterprise_registry",
                     [gov], (D5, D5), share, False),
            _outcome("2024-11-08T01:00:00+00:00", "dwd→dws", "dwd_fuel_sale",
                     [fuel, "fuel_stations"], (D5, D7), "liters between 0 and 200", True),
            _outcome("2024-11-08T01:05:00+00:00", "dws/ads audit", "ads_trade_daily",
                     ["merchant_registry", pay], (D5, D7), "ads audits", True),
            # Outside the period: not counted.
            _outcome("2024-11-04T01:00:00+00:00", "ods→dwd", "ods_pay_transactions", [pay],
                     (dt.date(2024, 11, 1), D4), share, False),
        ],
    )  # fmt: skip
    ods_q = [{"feed": pay, "business_date": D5, "reason_code": "malformed_row"}] * 3
    ods_q += [{"feed": gov, "business_date": D5, "reason_code": "header_mismatch"}]
    ods_q += [{"feed": pay, "business_date": D4, "reason_code": "bad_json"}] * 50
    _write(lake, "ods_quarantine", ods_q)
    dwd_q = [{"feed": pay, "business_date": D5, "reason_code": "bad_amount"}] * 7
    dwd_q += [{"feed": gov, "business_date": D5, "reason_code": c} for c in ("bad_uscc",) * 2]
    dwd_q += [{"feed": gov, "business_date": D5, "reason_code": "missing_value"}] * 2
    _write(lake, "dwd_quarantine", dwd_q)
    return lake


def _rows(ws, header_row: int = 1) -> list[dict]:
    """The table under `header_row`, down to the first empty row (notes follow it)."""
    headers = [c.value for c in ws[header_row]]
    rows = []
    for values in ws.iter_rows(min_row=header_row + 1, values_only=True):
        if values[0] is None:
            break
        rows.append(dict(zip(headers, values, strict=False)))
    return rows


def test_every_quarantine_reason_has_chinese_wording() -> None:
    contracts = tables.contracts()
    codes = {
        v
        for name in ("ods_quarantine", "dwd_quarantine")
        for v in contracts[name].column("reason_code").values or ()
    }
    assert codes <= set(REASONS_ZH), sorted(codes - set(REASONS_ZH))


def test_the_city_report_carries_the_hand_counted_figures(
    warehouse: Settings, tmp_path: Path
) -> None:
    xlsx, docx = write_report(D5, D7, out=tmp_path / "out", settings=warehouse)
    wb = load_workbook(xlsx)
    assert wb.sheetnames == [
        "概览", "完整率", "准确率", "及时率", "质量检查", "未通过检查", "按接口明细", "隔离原因",
        "未关闭工单",
    ]  # fmt: skip

    overview = wb["概览"]
    assert overview["A2"].value == "报告期：2024-11-05 至 2024-11-07"
    assert overview["A3"].value == "部门：全部部门"
    rows = _rows(overview, OVERVIEW_HEADER_ROW)
    by_feed = {r["数据接口"]: r for r in rows}
    assert list(by_feed) == [FUEL, PAY, GOV, "合计"]  # by department, then feed
    pay = by_feed[PAY]
    figures = (pay["责任部门"], pay["交付数"], pay["入库数"], pay["隔离数"])
    assert figures == (COMMERCE, 150, 140, 10)
    assert pay["完整率"] == pytest.approx(145 / 150)  # (95 + 50) complete of 150
    assert pay["准确率"] == pytest.approx(140 / 150)
    assert pay["及时率"] == pytest.approx(2 / 3)  # D6 due, nothing landed
    # Checks per department, each once a day: D5 4 passed; D6, D7 3 each (the gov check is
    # not its). The first run's failure on D5 was superseded by the later pass.
    assert (pay["检查通过(项次)"], pay["检查未通过(项次)"]) == (10, 0)
    gov = by_feed[GOV]
    assert (gov["交付数"], gov["入库数"], gov["完整率"]) == (50, 45, pytest.approx(48 / 50))
    assert (gov["检查通过(项次)"], gov["检查未通过(项次)"]) == (0, 1)
    total = by_feed["合计"]
    assert (total["责任部门"], total["交付数"], total["入库数"], total["隔离数"]) == (
        "全部部门", 500, 485, 15,
    )  # fmt: skip
    assert total["完整率"] == pytest.approx(493 / 500)
    assert total["准确率"] == pytest.approx(485 / 500)
    assert total["及时率"] == pytest.approx(6 / 8)
    assert (total["检查通过(项次)"], total["检查未通过(项次)"]) == (10, 1)
    assert overview.cell(OVERVIEW_HEADER_ROW + 1, 6).number_format == "0.00%"

    # One line per department and the city's total, per day; a gap where nothing was delivered.
    completeness = {r["业务日期"].date(): r for r in _rows(wb["完整率"])}
    assert list(completeness) == [D5, D6, D7]
    assert completeness[D5][COMMERCE] == pytest.approx(195 / 200)
    assert completeness[D5][MARKET] == pytest.approx(0.9)
    assert completeness[D6][MARKET] is None  # no row: nothing delivered, nothing due
    assert completeness[D5]["合计"] == pytest.approx(213 / 220)
    timeliness = {r["业务日期"].date(): r for r in _rows(wb["及时率"])}
    assert timeliness[D5][COMMERCE] == pytest.approx(0.5)  # fuel late, pay on time
    assert timeliness[D5]["合计"] == pytest.approx(2 / 3)
    validity = {r["业务日期"].date(): r for r in _rows(wb["准确率"])}
    assert validity[D5]["合计"] == pytest.approx(205 / 220)
    for sheet in ("完整率", "准确率", "及时率", "质量检查"):
        charts = wb[sheet]._charts
        assert len(charts) == 1 and isinstance(charts[0], LineChart), sheet
    assert len(wb["完整率"]._charts[0].series) == 3  # 市商务局, 市市场监管局, 合计
    assert wb["完整率"]["B2"].number_format == "0.00%"

    checks = {r["业务日期"].date(): (r["检查通过"], r["检查未通过"]) for r in _rows(wb["质量检查"])}
    assert checks == {D5: (4, 1), D6: (3, 0), D7: (3, 0)}
    failed = _rows(wb["未通过检查"])
    assert [(r["检查表"], r["不合格行数"], r["责任部门"]) for r in failed] == [
        ("ods_gov_enterprise_registry", 5, MARKET)
    ]
    reasons = _rows(wb["隔离原因"])
    assert [(r["隔离原因"], r["环节"], r["隔离行数"]) for r in reasons] == [
        ("金额格式错误", "清洗", 7),
        ("记录格式错误(字段数不符等)", "入湖", 3),
        ("统一社会信用代码校验错误", "清洗", 2),
        ("必填项缺失", "清洗", 2),
        ("表头与接口标准不符", "入湖", 1),
    ]  # the 50 bad_json rows of D4 are outside the period
    assert reasons[0]["占比"] == pytest.approx(7 / 15)
    assert len(_rows(wb["按接口明细"])) == 8
    assert "未启用质量工单" in wb["未关闭工单"]["A1"].value

    doc = Document(str(docx))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "数据质量评估报告" in text and "报告期：2024-11-05 至 2024-11-07" in text
    assert "完整率 98.60%" in text and "准确率 97.00%" in text and "及时率 75.00%" in text
    assert "质量检查通过 10 项次、未通过 1 项次" in text
    assert "首要问题为清洗环节的“金额格式错误”" in text
    assert len(doc.inline_shapes) == 4  # a trend per indicator and the checks'
    headers = [[c.text for c in t.rows[0].cells] for t in doc.tables]
    assert headers[0][:3] == ["责任部门", "数据接口", "交付数"]
    last_row = [c.text for c in doc.tables[0].rows[-1].cells]
    assert last_row[:8] == ["全部部门", "合计", "500", "485", "15", "98.60%", "97.00%", "75.00%"]
    assert ["排名", "责任部门", "数据接口", "环节", "原因代码", "隔离原因", "隔离行数", "占比"] in (
        headers
    )


def test_a_department_report_draws_its_feeds(warehouse: Settings, tmp_path: Path) -> None:
    report = gather(D5, D7, COMMERCE, settings=warehouse)
    assert {r["owner_department"] for r in report.scorecard} == {COMMERCE}
    assert report.series() == sorted([PAY, FUEL])
    assert report.checks[("合计", D5)] == (4, 0)  # the market department's failure is not its
    assert [r["reason_code"] for r in report.reasons] == ["bad_amount", "malformed_row"]
    assert "市商务局共 2 个数据接口交付记录 450 条" in summary_zh(report)
    xlsx, docx = write_report(D5, D7, COMMERCE, tmp_path, settings=warehouse)
    assert xlsx.name == "quality-report_2024-11-05_2024-11-07_市商务局.xlsx"
    wb = load_workbook(xlsx)
    assert [c.value for c in wb["完整率"][1]] == ["业务日期", *sorted([PAY, FUEL]), "合计"]
    assert len(Document(str(docx)).inline_shapes) == 4


def test_an_empty_warehouse_gives_a_report_of_nothing(lake: Settings, tmp_path: Path) -> None:
    report = gather(D5, D5, settings=lake)
    assert report.scorecard == [] and report.reasons == [] and report.failed_checks == []
    _, docx = write_report(D5, D5, out=tmp_path, settings=lake)
    assert "报告期内无隔离记录" in "\n".join(p.text for p in Document(str(docx)).paragraphs)
    with pytest.raises(ValueError, match="ends"):
        gather(D7, D5, settings=lake)


def test_the_cli_writes_both_files(warehouse: Settings, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from citylake.cli import app

    out = tmp_path / "reports"
    args = ["quality", "report", "--from", "2024-11-05", "--to", "2024-11-07", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--department", MARKET])
    assert result.exit_code == 0, result.output
    stem = "quality-report_2024-11-05_2024-11-07_市市场监管局"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.docx", f"{stem}.xlsx"]
    overview = _rows(load_workbook(out / f"{stem}.xlsx")["概览"], OVERVIEW_HEADER_ROW)
    assert [(r["数据接口"], r["交付数"]) for r in overview] == [(GOV, 50), ("合计", 50)]


def test_the_demo_writes_the_report_of_its_days(warehouse: Settings) -> None:
    from rich.console import Console

    from pipelines.build import BuildResult
    from pipelines.demo import write_quality_report

    console = Console(record=True, width=200)
    paths = write_quality_report(BuildResult(D5, D7, {}), warehouse, console)
    assert [p.parent for p in paths] == [warehouse.var_dir / "reports"] * 2
    assert sorted(p.suffix for p in paths) == [".docx", ".xlsx"]
    assert "quality report (数据质量评估报告)" in console.export_text()
    overview = _rows(load_workbook(paths[0])["概览"], OVERVIEW_HEADER_ROW)
    assert overview[-1]["交付数"] == 500  # the period D5 … D7, all departments


def test_a_trend_with_values_on_one_day_keeps_the_periods_axis(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Autoscaled to its one drawn point, the axis spread over four years and matplotlib gave
    # up ticking it ("Locator attempting to generate 1607 ticks"): the demo's 1-day report.
    from quality.report_charts import trend_chart

    days = [dt.date(2024, 11, 4), dt.date(2024, 11, 5)]
    with caplog.at_level("WARNING", logger="matplotlib.ticker"):
        path = trend_chart("及时率", days, {"市商务局": [None, 1.0]}, tmp_path / "t.png")
    assert path.stat().st_size > 0
    assert not [r for r in caplog.records if "ticks" in r.getMessage()]
