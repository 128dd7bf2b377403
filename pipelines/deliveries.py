"""The reconciliation log (数据对账): which deliveries arrived, and where every line went.

Reads ``ods_delivery_log`` by business-date range, feed and owner department, and writes the
same rows to an Excel workbook a department can check against its own export.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F

from citylake.settings import Settings, get_settings
from citylake.spark import get_spark
from pipelines import tables

# Column order and Chinese headings of the export; keys are ods_delivery_log columns.
EXPORT_COLUMNS = {
    "business_date": "业务日期",
    "feed": "数据接口",
    "owner_department": "责任部门",
    "channel": "交付通道",
    "source": "来源",
    "source_format": "格式",
    "delivery_id": "交付批次",
    "delivered": "交付数",
    "loaded": "入湖数",
    "quarantined": "隔离数",
    "status": "状态",
    "error": "错误说明",
    "started_at": "开始时间",
    "finished_at": "完成时间",
}


def query_deliveries(
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    feed: str | None = None,
    department: str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Deliveries whose business date is in [start, end], newest first."""
    settings = settings or get_settings()
    log = tables.read(
        get_spark(settings), tables.contract("ods_delivery_log", settings), settings=settings
    )
    if start is not None:
        log = log.where(F.col("business_date") >= F.lit(start))
    if end is not None:
        log = log.where(F.col("business_date") <= F.lit(end))
    if feed is not None:
        log = log.where(F.col("feed") == feed)
    if department is not None:
        log = log.where(F.col("owner_department") == department)
    ordered = log.orderBy(F.desc("business_date"), "feed", F.desc("started_at"))
    return [row.asDict() for row in ordered.collect()]


def export_xlsx(rows: list[dict[str, Any]], path: Path) -> Path:
    """One sheet of deliveries with Chinese headings and a totals row; returns the path."""
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "交付对账"
    sheet.append(list(EXPORT_COLUMNS.values()))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell(row.get(column)) for column in EXPORT_COLUMNS])
    totals = {c: sum(r[c] for r in rows) for c in ("delivered", "loaded", "quarantined")}
    sheet.append([("合计" if c == "business_date" else totals.get(c)) for c in EXPORT_COLUMNS])
    sheet.freeze_panes = "A2"
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)  # Excel has no time zones; Spark gives local time
    return value
