"""The regulator report as an Excel workbook: an overview, one sheet per indicator with a native
Excel line chart of its trend, the checks, the daily figures per feed, the top quarantine
reasons and the open work orders. Shares are numbers formatted as percent (they stay
computable); an empty cell is a day with nothing delivered or nothing due."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from quality.report import (
    CHECK_HEADERS,
    DETAIL_HEADERS,
    INDICATORS,
    ORDER_HEADERS,
    OVERVIEW_HEADERS,
    REASON_HEADERS,
    TOTAL,
    Report,
    check_rows,
    orders_rows,
    overview_rows,
    reason_rows,
    summary_zh,
    trend,
)

PERCENT = "0.00%"
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
OVERVIEW_HEADER_ROW = 7  # rows 1-5: title, period, scope, generated, summary


def _table(ws: Worksheet, row: int, headers: list[str], rows, percent: set[int]) -> int:
    """Headers at `row`, then the rows; columns in `percent` (1-based) as percent. Returns the
    last row written."""
    for col, name in enumerate(headers, 1):
        cell = ws.cell(row=row, column=col, value=name)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        ws.column_dimensions[get_column_letter(col)].width = max(
            ws.column_dimensions[get_column_letter(col)].width or 0, 4 + 2 * len(name)
        )
    if row == 1:  # a sheet of its own: keep the headers in view
        ws.freeze_panes = "A2"
    for values in rows:
        row += 1
        for col, value in enumerate(values, 1):
            cell = ws.cell(row=row, column=col, value=value)
            if col in percent:
                cell.number_format = PERCENT
    return row


def _line_chart(title: str, ws: Worksheet, rows: int, cols: int, percent: bool) -> LineChart:
    chart = LineChart()
    chart.title = title
    chart.height, chart.width = 8, 18
    chart.y_axis.title = "比率" if percent else "项次"
    chart.x_axis.title = "业务日期"
    chart.x_axis.number_format = "mm-dd"
    if percent:
        chart.y_axis.number_format = "0%"
        chart.y_axis.scaling.min, chart.y_axis.scaling.max = 0, 1
    # openpyxl hides the axes unless told otherwise (its `delete` defaults to True).
    chart.x_axis.delete = chart.y_axis.delete = False
    data = Reference(ws, min_col=2, max_col=cols, min_row=1, max_row=rows)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=rows))
    chart.display_blanks = "gap"  # nothing delivered is a gap, not a drop to 0
    return chart


def write_xlsx(report: Report, path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "概览"
    ws["A1"] = "数据质量评估报告"
    ws["A1"].font = Font(bold=True, size=16)
    ws["A2"] = f"报告期：{report.start} 至 {report.end}"
    ws["A3"] = f"部门：{report.scope}"
    ws["A4"] = f"生成时间：{report.generated_at:%Y-%m-%d %H:%M} UTC"
    ws["A5"] = summary_zh(report)
    ws["A5"].alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells("A5:K5")
    ws.row_dimensions[5].height = 60
    _table(
        ws, OVERVIEW_HEADER_ROW, OVERVIEW_HEADERS, overview_rows(report, with_id=True), {6, 7, 8}
    )
    for note in [*report.notes, report.orders_note]:
        if note:
            ws.cell(row=ws.max_row + 2, column=1, value=note)

    for name, label in INDICATORS:
        sheet = wb.create_sheet(label)
        values = trend(report, name)
        series = list(values)
        rows = [[day, *(v[i] for v in values.values())] for i, day in enumerate(report.days)]
        last = _table(sheet, 1, ["业务日期", *series], rows, set(range(2, len(series) + 2)))
        for r in range(2, last + 1):
            sheet.cell(row=r, column=1).number_format = "yyyy-mm-dd"
        sheet.column_dimensions["A"].width = 12
        chart = _line_chart(f"{label}趋势({report.scope})", sheet, last, len(series) + 1, True)
        sheet.add_chart(chart, f"{get_column_letter(len(series) + 3)}2")

    checks = wb.create_sheet("质量检查")
    rows = [[day, *report.checks.get((TOTAL, day), (0, 0))] for day in report.days]
    last = _table(checks, 1, ["业务日期", "检查通过", "检查未通过"], rows, set())
    for r in range(2, last + 1):
        checks.cell(row=r, column=1).number_format = "yyyy-mm-dd"
    checks.add_chart(_line_chart(f"质量检查趋势({report.scope})", checks, last, 3, False), "E2")

    failed = wb.create_sheet("未通过检查")
    _table(failed, 1, CHECK_HEADERS, check_rows(report), {7})

    detail = wb.create_sheet("按接口明细")
    rows = [
        [
            r["biz_date"],
            r["owner_department"],
            report.feed_label(r["feed"]),
            r["delivered"],
            r["loaded"],
            r["quarantined"],
            *(r[name] for name, _ in INDICATORS),
            r["checks_passed"],
            r["checks_failed"],
        ]
        for r in report.scorecard
    ]
    last = _table(detail, 1, DETAIL_HEADERS, rows, {7, 8, 9})
    for r in range(2, last + 1):
        detail.cell(row=r, column=1).number_format = "yyyy-mm-dd"

    reasons = wb.create_sheet("隔离原因")
    _table(reasons, 1, REASON_HEADERS, reason_rows(report), {8})

    orders = wb.create_sheet("未关闭工单")
    if report.orders is None:
        orders["A1"] = report.orders_note
    else:
        _table(orders, 1, ORDER_HEADERS, orders_rows(report), set())
    wb.save(path)
    return path
