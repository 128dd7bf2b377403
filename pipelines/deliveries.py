"""The reconciliation log (数据对账): which deliveries arrived, and where every line went.

Reads ``ods_delivery_log`` by business-date range, feed and owner department, and writes the
same rows to an Excel workbook a department can check against its own export.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.compute as pc

from citylake.settings import Settings, get_settings
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
    "cursor": "拉取位点",
}


def query_deliveries(
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    feed: str | None = None,
    department: str | None = None,
    channel: str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Deliveries whose business date is in [start, end], newest first.

    Read straight from the Delta log table (delta-rs, no JVM), so the command answers at once;
    times come back in the platform's time zone.
    """
    settings = settings or get_settings()
    where = pc.scalar(True)
    if start is not None:
        where &= pc.field("business_date") >= start
    if end is not None:
        where &= pc.field("business_date") <= end
    for column, value in (("feed", feed), ("owner_department", department), ("channel", channel)):
        if value is not None:
            where &= pc.field(column) == value
    log = tables.read_native(tables.contract("ods_delivery_log", settings), where, settings)
    tz = ZoneInfo(settings.timezone)
    rows = [
        {k: v.astimezone(tz) if isinstance(v, dt.datetime) else v for k, v in row.items()}
        for row in log.to_pylist()
    ]
    rows.sort(key=lambda r: r["started_at"], reverse=True)
    rows.sort(key=lambda r: r["feed"])
    rows.sort(key=lambda r: r["business_date"], reverse=True)
    return rows


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
        return value.replace(tzinfo=None)  # Excel has no time zones: local (platform) time
    return value
