"""The regulator report as a Word document: title, period, department, a summary in Chinese,
the overview table, a trend chart per indicator (matplotlib, CJK font), the failed checks, the
top quarantine reasons and the open work orders."""

from __future__ import annotations

from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from quality.report import (
    CHECK_HEADERS,
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
from quality.report_charts import cjk_family, trend_chart


def _text(value, percent: bool) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value:.2%}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(doc, headers: list[str], rows, percent: set[int], size: float = 8) -> None:
    """A grid table; columns in `percent` (0-based) as percent."""
    rows = list(rows)
    table = doc.add_table(rows=1 + len(rows), cols=len(headers))
    table.style = "Table Grid"
    for col, name in enumerate(headers):
        table.rows[0].cells[col].text = name
    for r, values in enumerate(rows, 1):
        for col, value in enumerate(values):
            table.rows[r].cells[col].text = _text(value, col in percent)
    for row in table.rows:
        for cell in row.cells:
            for paragraph in cell.paragraphs:
                for run in paragraph.runs:
                    run.font.size = Pt(size)
    for cell in table.rows[0].cells:
        for run in cell.paragraphs[0].runs:
            run.bold = True


def write_docx(report: Report, path: Path, charts: Path) -> Path:
    """Write the document; the chart images are drawn into the directory `charts`."""
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.size = Pt(10.5)
    # Chinese text takes the East Asian font of the style: the same CJK family as the charts.
    family = cjk_family()
    for style in ("Normal", "Title", "Heading 1", "Heading 2"):
        fonts = doc.styles[style].element.get_or_add_rPr().get_or_add_rFonts()
        fonts.attrib.pop(qn("w:eastAsiaTheme"), None)  # a theme font would win over ours
        fonts.set(qn("w:eastAsia"), family)
    section = doc.sections[0]
    section.left_margin = section.right_margin = Cm(2)

    title = doc.add_heading("数据质量评估报告", level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph(f"报告期：{report.start} 至 {report.end}")
    doc.add_paragraph(f"部门：{report.scope}")
    doc.add_paragraph(f"生成时间：{report.generated_at:%Y-%m-%d %H:%M} UTC")

    doc.add_heading("一、总体情况", level=1)
    doc.add_paragraph(summary_zh(report))
    _table(doc, OVERVIEW_HEADERS, list(overview_rows(report, with_id=False)), {5, 6, 7}, size=7)
    for note in report.notes:
        doc.add_paragraph(note)

    doc.add_heading("二、指标趋势", level=1)
    for i, (name, label) in enumerate(INDICATORS, 1):
        doc.add_heading(f"{i}. {label}", level=2)
        values = trend(report, name)
        png = trend_chart(
            f"{label}趋势({report.scope})", report.days, values, charts / f"{name}.png"
        )
        doc.add_picture(str(png), width=Cm(16))
    doc.add_heading(f"{len(INDICATORS) + 1}. 质量检查", level=2)
    counts = [report.checks.get((TOTAL, d), (0, 0)) for d in report.days]
    png = trend_chart(
        f"质量检查趋势({report.scope})",
        report.days,
        {"检查通过": [p for p, _ in counts], "检查未通过": [f for _, f in counts]},
        charts / "checks.png",
        percent=False,
    )
    doc.add_picture(str(png), width=Cm(16))

    doc.add_heading("三、未通过的质量检查", level=1)
    failed = list(check_rows(report))
    if failed:
        _table(doc, CHECK_HEADERS, failed, {6}, size=7)
    else:
        doc.add_paragraph("报告期内各项质量检查均已通过。")

    doc.add_heading("四、主要问题（隔离原因）", level=1)
    reasons = list(reason_rows(report, with_id=False))
    if reasons:
        _table(doc, REASON_HEADERS, reasons, {7})
    else:
        doc.add_paragraph("报告期内无隔离记录。")

    doc.add_heading("五、未关闭的质量工单", level=1)
    if report.orders is None:
        doc.add_paragraph(report.orders_note or "")
    elif report.orders:
        _table(doc, ORDER_HEADERS, orders_rows(report), set(), size=7)
    else:
        doc.add_paragraph("无未关闭的质量工单。")
    doc.save(path)
    return path
