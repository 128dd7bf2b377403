"""The regulator report (数据质量评估报告): a period, optionally one department, in xlsx and docx.

Figures come from the warehouse, read by delta-rs (no JVM): the quality scorecard
(ads_quality_scorecard) for 完整率 / 准确率 / 及时率 per feed and day, the gate outcomes
(dwd_gate_outcome) for the checks passed and failed, both quarantines for the failure reasons,
and the work orders in PostgreSQL when they are enabled.

A department's (or the whole city's) share on a day is the scorecard's ratio over its feeds'
rows added up, so it means what the indicator spec says: completeness = (delivered − rows
missing a required value) ÷ delivered, validity = loaded ÷ delivered, timeliness = periods
landed on time ÷ periods due. Nothing delivered (or nothing due) is an empty cell, never 0.
Checks are counted as the scorecard counts them (the latest outcome of each gate check whose
covered dates include the day), once per department even when several of its feeds stand
behind one checked table.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from citylake.settings import Settings, get_settings
from pipelines import tables
from quality.reasons import STAGE_ZH, reason_zh

# (scorecard column, Chinese name) of the three indicators, in report order.
INDICATORS = (("completeness", "完整率"), ("validity", "准确率"), ("timeliness", "及时率"))
STATUS_ZH = {"open": "待处理", "acknowledged": "已确认", "fixed": "已修复", "verified": "已验证"}
SEVERITY_ZH = {"block": "拦截", "warn": "警告", "quarantine": "隔离"}
TOP_REASONS = 10
ALL = "全部部门"
TOTAL = "合计"


@dataclass
class Figures:
    """Counts behind the three shares, added up over feeds and/or days."""

    delivered: int = 0
    loaded: int = 0
    quarantined: int = 0
    complete: float = 0.0  # delivered − rows missing a required value
    due: int = 0  # periods due
    on_time: int = 0  # of them landed by the deadline

    def add(self, row: dict) -> None:
        self.delivered += row["delivered"]
        self.loaded += row["loaded"]
        self.quarantined += row["quarantined"]
        if row["completeness"] is not None:
            self.complete += row["completeness"] * row["delivered"]
        if row["timeliness"] is not None:
            self.due += 1
            self.on_time += round(row["timeliness"])

    def share(self, indicator: str) -> float | None:
        if indicator == "timeliness":
            return self.on_time / self.due if self.due else None
        if not self.delivered:
            return None
        numerator = self.complete if indicator == "completeness" else self.loaded
        return numerator / self.delivered


@dataclass
class Report:
    start: dt.date
    end: dt.date
    department: str | None
    generated_at: dt.datetime
    feed_names: dict[str, str]  # feed -> its Chinese name
    feed_departments: dict[str, str]
    scorecard: list[dict]  # the period's rows (of the department), by date and feed
    # (department or TOTAL, day) -> checks passed, failed; TOTAL counts each check once
    checks: dict[tuple[str, dt.date], tuple[int, int]]
    failed_checks: list[dict]  # latest failing outcome of each check in the period
    reasons: list[dict]  # top quarantine reasons
    orders: list[dict] | None  # open work orders; None when not enabled / not reachable
    orders_note: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def days(self) -> list[dt.date]:
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(n)]

    @property
    def scope(self) -> str:
        return self.department or ALL

    def series_of(self, row: dict) -> str:
        """What a chart line stands for: the department, or within one department the feed."""
        if self.department:
            return self.feed_label(row["feed"])
        return row["owner_department"]

    def feed_label(self, feed: str, *, with_id: bool = True) -> str:
        name = self.feed_names.get(feed, feed)
        return f"{name}({feed})" if with_id else name

    def series(self) -> list[str]:
        return sorted({self.series_of(r) for r in self.scorecard})

    def daily(self) -> dict[str, dict[dt.date, Figures]]:
        """Figures per series (and TOTAL) per day."""
        out: dict[str, dict[dt.date, Figures]] = defaultdict(lambda: defaultdict(Figures))
        for r in self.scorecard:
            out[self.series_of(r)][r["biz_date"]].add(r)
            out[TOTAL][r["biz_date"]].add(r)
        return out

    def overview(self) -> list[tuple[str, str, Figures, int, int, int]]:
        """Per department and feed (its id) over the period: figures, checks passed/failed (the
        department's), open orders; then the whole scope (feed TOTAL)."""
        per_feed: dict[tuple[str, str], Figures] = defaultdict(Figures)
        total = Figures()
        for r in self.scorecard:
            per_feed[(r["owner_department"], r["feed"])].add(r)
            total.add(r)
        checks = self.checks_by_department()
        orders = defaultdict(int)
        for o in self.orders or []:
            orders[o["department"]] += 1
        rows = []
        for (department, feed), figures in sorted(per_feed.items()):
            passed, failed = checks.get(department, (0, 0))
            rows.append((department, feed, figures, passed, failed, orders[department]))
        passed = sum(p for (d, _), (p, _f) in self.checks.items() if d == TOTAL)
        failed = sum(f for (d, _), (_p, f) in self.checks.items() if d == TOTAL)
        rows.append((self.scope, TOTAL, total, passed, failed, len(self.orders or [])))
        return rows

    def checks_by_department(self) -> dict[str, tuple[int, int]]:
        """Check-days passed and failed over the period, per department."""
        out: dict[str, tuple[int, int]] = {}
        for (department, _), (passed, failed) in self.checks.items():
            if department == TOTAL:
                continue
            p, f = out.get(department, (0, 0))
            out[department] = (p + passed, f + failed)
        return out


def _read(name: str, settings: Settings, where: pc.Expression | None = None) -> list[dict]:
    """A table's rows through delta-rs; none when the table was never written (unlike
    tables.read_native, which would start Spark to create it)."""
    table = tables.contract(name, settings)
    uri, options = tables.native_uri(table, settings), tables.storage_options(settings)
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        return []
    # Spark writes timestamps as INT96: read them as microseconds, as read_native does.
    read_options = ds.ParquetReadOptions(coerce_int96_timestamp_unit="us")
    dataset = DeltaTable(uri, storage_options=options).to_pyarrow_dataset(
        parquet_read_options=read_options
    )
    columns = [c.name for c in table.columns if not c.name.startswith("_")]
    return dataset.to_table(columns=columns, filter=where).to_pylist()


def _in_period(column: str, start: dt.date, end: dt.date) -> pc.Expression:
    return (pc.field(column) >= pc.scalar(start)) & (pc.field(column) <= pc.scalar(end))


def _feeds(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Each feed's Chinese name and owner department, from the ODS contracts."""
    names, departments = {}, {}
    for c in tables.contracts(settings).values():
        if c.feed is not None:
            # "一码付交易流水原始数据(贴源层, …)" -> "一码付交易流水"
            names[c.feed.name] = re.split(r"原始数据|\(", c.description.zh)[0]
            departments[c.feed.name] = c.owner_department
    return names, departments


def gather(
    start: dt.date,
    end: dt.date,
    department: str | None = None,
    *,
    settings: Settings | None = None,
    with_orders: bool | None = None,
) -> Report:
    """Everything the report shows, read from the warehouse (and the work-order database)."""
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    settings = settings or get_settings()
    names, departments = _feeds(settings)
    mine = {f for f, d in departments.items() if department in (None, d)}

    scorecard = [
        r
        for r in _read("ads_quality_scorecard", settings, _in_period("biz_date", start, end))
        if department in (None, r["owner_department"])
    ]
    scorecard.sort(key=lambda r: (r["biz_date"], r["owner_department"], r["feed"]))

    report = Report(
        start=start,
        end=end,
        department=department,
        generated_at=dt.datetime.now(dt.UTC),
        feed_names=names,
        feed_departments=departments,
        scorecard=scorecard,
        checks={},
        failed_checks=[],
        reasons=_top_reasons(start, end, mine, departments, settings),
        orders=None,
    )
    _judge_checks(report, mine, settings)
    if with_orders is None:
        with_orders = settings.work_orders.enabled
    if with_orders:
        try:
            report.orders = open_orders(department, settings)
        except Exception as exc:  # the figures stand without the order list; say it is missing
            report.orders_note = f"质量工单库不可达，未列出工单：{exc}"
    else:
        report.orders_note = "未启用质量工单(settings.work_orders.enabled)，未列出工单。"
    if department and department not in departments.values():
        report.notes.append(f"“{department}”不是任何数据接口的责任部门。")
    return report


def open_orders(department: str | None, settings: Settings) -> list[dict]:
    """Work orders not closed yet (of the department), from PostgreSQL."""
    from quality.orders import list_orders

    return list_orders(status=list(STATUS_ZH), department=department, settings=settings)


def _judge_checks(report: Report, feeds: set[str], settings: Settings) -> None:
    """Per department and day the latest outcome of each check covering the day; and the
    checks whose latest outcome in the period failed."""
    overlap = (pc.field("date_from") <= pc.scalar(report.end)) & (
        pc.field("date_to") >= pc.scalar(report.start)
    )
    outcomes = [
        o for o in _read("dwd_gate_outcome", settings, overlap) if feeds & set(o["feeds"] or ())
    ]
    latest: dict[tuple[dt.date, str, str, str], dict] = {}
    for o in outcomes:
        for day in report.days:
            if o["date_from"] <= day <= o["date_to"]:
                key = (day, o["gate"], o["table_name"], o["check_name"])
                if key not in latest or o["run_at"] > latest[key]["run_at"]:
                    latest[key] = o
    counts: dict[tuple[str, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    last_failed: dict[tuple[str, str, str], dict] = {}
    for (day, *check), o in latest.items():
        owners = {report.feed_departments[f] for f in o["feeds"] if f in feeds}
        for department in (*owners, TOTAL):  # TOTAL: each check once for the whole scope
            counts[(department, day)][0 if o["success"] else 1] += 1
        if not o["success"]:
            key = tuple(check)
            if key not in last_failed or o["run_at"] > last_failed[key]["run_at"]:
                last_failed[key] = {**o, "departments": "、".join(sorted(owners))}
    report.checks = {k: (p, f) for k, (p, f) in counts.items()}
    report.failed_checks = sorted(
        last_failed.values(), key=lambda o: (o["run_at"], o["table_name"]), reverse=True
    )


def _top_reasons(
    start: dt.date,
    end: dt.date,
    feeds: set[str],
    departments: dict[str, str],
    settings: Settings,
) -> list[dict]:
    """The period's quarantined rows counted by feed, stage and reason, most first."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for name, stage in (("ods_quarantine", "ods"), ("dwd_quarantine", "dwd")):
        for r in _read(name, settings, _in_period("business_date", start, end)):
            if r["feed"] in feeds:
                counts[(r["feed"], stage, r["reason_code"])] += 1
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    return [
        {
            "department": departments[feed],
            "feed": feed,
            "stage": STAGE_ZH[stage],
            "reason_code": code,
            "reason": reason_zh(code),
            "rows": n,
            "share": n / total,
        }
        for (feed, stage, code), n in ranked
    ]


# -- the summary paragraph -------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def summary_zh(report: Report) -> str:
    """One paragraph a regulator reads first."""
    total = report.overview()[-1]
    figures, passed, failed = total[2], total[3], total[4]
    feeds = {r["feed"] for r in report.scorecard}
    text = (
        f"报告期 {report.start} 至 {report.end}，{report.scope}共 {len(feeds)} 个数据接口"
        f"交付记录 {figures.delivered:,} 条，入库 {figures.loaded:,} 条，"
        f"隔离 {figures.quarantined:,} 条。完整率 {_pct(figures.share('completeness'))}，"
        f"准确率 {_pct(figures.share('validity'))}，及时率 {_pct(figures.share('timeliness'))}"
        f"（按时送达 {figures.on_time} / 应交付 {figures.due} 批次）。"
        f"质量检查通过 {passed} 项次、未通过 {failed} 项次。"
    )
    if report.reasons:
        top = report.reasons[0]
        text += (
            f"首要问题为{top['stage']}环节的“{top['reason']}”"
            f"（{report.feed_label(top['feed'])}，{top['rows']:,} 条）。"
        )
    else:
        text += "报告期内无隔离记录。"
    if report.orders is not None:
        text += f"截至报告生成时，未关闭的质量工单 {len(report.orders)} 件。"
    return text


# -- files ----------------------------------------------------------------------------------


def file_stem(report: Report) -> str:
    return f"quality-report_{report.start}_{report.end}_{report.scope}"


def write_report(
    start: dt.date,
    end: dt.date,
    department: str | None = None,
    out: Path | None = None,
    *,
    settings: Settings | None = None,
) -> tuple[Path, Path]:
    """Gather the period's figures and write the xlsx and the docx into `out`
    (default var/reports); returns their paths."""
    from quality.report_docx import write_docx
    from quality.report_xlsx import write_xlsx

    settings = settings or get_settings()
    report = gather(start, end, department, settings=settings)
    out = out or settings.var_dir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    stem = file_stem(report)
    xlsx = write_xlsx(report, out / f"{stem}.xlsx")
    with tempfile.TemporaryDirectory(prefix="citylake-report-") as charts:
        docx = write_docx(report, out / f"{stem}.docx", Path(charts))
    return xlsx, docx


def orders_rows(report: Report) -> Iterable[list]:
    """The open work orders as table rows (shared by both files)."""
    for o in report.orders or []:
        yield [
            o["id"],
            STATUS_ZH.get(o["status"], o["status"]),
            o["department"],
            o["table_name"],
            o["check_name"],
            SEVERITY_ZH.get(o["severity"], o["severity"]),
            o["unexpected_count"],
            o["failures"],
            o["last_seen"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        ]


ORDER_HEADERS = [
    "工单号",
    "状态",
    "责任部门",
    "问题表",
    "检查项",
    "级别",
    "不合格行数",
    "发生次数",
    "最近发生",
]
REASON_HEADERS = [
    "排名",
    "责任部门",
    "数据接口",
    "环节",
    "原因代码",
    "隔离原因",
    "隔离行数",
    "占比",
]
CHECK_HEADERS = [
    "检查时间(UTC)",
    "质量门",
    "检查表",
    "检查项",
    "级别",
    "不合格行数",
    "不合格占比",
    "覆盖业务日期",
    "责任部门",
]
# A feed's figures for a period or a day, then its checks: the overview and the detail sheet.
FIGURE_HEADERS = ["交付数", "入库数", "隔离数", *(label for _, label in INDICATORS)]
OVERVIEW_HEADERS = [
    "责任部门",
    "数据接口",
    *FIGURE_HEADERS,
    "检查通过(项次)",
    "检查未通过(项次)",
    "未关闭工单",
]
DETAIL_HEADERS = ["业务日期", "责任部门", "数据接口", *FIGURE_HEADERS, "检查通过", "检查未通过"]


def overview_rows(report: Report, *, with_id: bool) -> Iterable[list]:
    """The overview table (OVERVIEW_HEADERS): a row per department and feed, then totals."""
    for department, feed, f, passed, failed, orders in report.overview():
        yield [
            department,
            feed if feed == TOTAL else report.feed_label(feed, with_id=with_id),
            f.delivered,
            f.loaded,
            f.quarantined,
            *(f.share(name) for name, _ in INDICATORS),
            passed,
            failed,
            orders,
        ]


def trend(report: Report, indicator: str) -> dict[str, list[float | None]]:
    """An indicator's share per series (and TOTAL) on each of the report's days; None where
    nothing was delivered that day (a gap in the chart, not a drop to 0)."""
    daily = report.daily()
    return {
        s: [daily[s][d].share(indicator) if d in daily[s] else None for d in report.days]
        for s in [*report.series(), TOTAL]
    }


def check_rows(report: Report) -> Iterable[list]:
    for o in report.failed_checks:
        share = o["unexpected_percent"]
        yield [
            o["run_at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            o["gate"],
            o["table_name"],
            o["check_name"],
            SEVERITY_ZH.get(o["severity"], o["severity"]),
            o["unexpected_count"],
            None if share is None else share / 100,
            f"{o['date_from']} 至 {o['date_to']}",
            o["departments"],
        ]


def reason_rows(report: Report, *, with_id: bool = True) -> Iterable[list]:
    for rank, r in enumerate(report.reasons, 1):
        yield [
            rank,
            r["department"],
            report.feed_label(r["feed"], with_id=with_id),
            r["stage"],
            r["reason_code"],
            r["reason"],
            r["rows"],
            r["share"],
        ]
