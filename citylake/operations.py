"""The operations view (运维大盘): runs, failures and durations per DAG and day, read from
Airflow's metadata database (dag_run, task_instance).

Airflow must be configured for the database first (``citylake ops`` takes the configuration
``citylake up`` gives its services; tests, their throw-away home): the rows come through
Airflow's own models, so the same code reads PostgreSQL or a test's SQLite.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class DagDay:
    """One DAG's runs that started on one day (UTC)."""

    dag_id: str
    day: dt.date
    runs: int
    succeeded: int
    failed: int
    running: int  # queued or running
    median_seconds: float | None  # of the finished runs
    max_seconds: float | None
    failed_tasks: int  # task instances failed for good
    retried_tasks: int  # task instances that needed more than one try


def dag_days(days: int = 7, now: dt.datetime | None = None) -> list[DagDay]:
    """Every DAG's runs of the last `days` days (by start, else by run_after), per day."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    with create_session() as session:
        runs = session.execute(
            select(
                DagRun.dag_id,
                DagRun.run_id,
                DagRun.state,
                DagRun.start_date,
                DagRun.end_date,
                DagRun.run_after,
            ).where(DagRun.run_after >= since)
        ).all()
        tasks = session.execute(
            select(
                TaskInstance.dag_id,
                TaskInstance.run_id,
                TaskInstance.state,
                TaskInstance.try_number,
            ).where(
                TaskInstance.run_id.in_([r.run_id for r in runs]) if runs else False,
            )
        ).all()
    by_run: dict[tuple[str, str], list] = defaultdict(list)
    for t in tasks:
        by_run[(t.dag_id, t.run_id)].append(t)
    groups: dict[tuple[str, dt.date], list] = defaultdict(list)
    for r in runs:
        groups[(r.dag_id, (r.start_date or r.run_after).date())].append(r)
    table = []
    for (dag_id, day), group in sorted(groups.items()):
        finished = [
            (r.end_date - r.start_date).total_seconds()
            for r in group
            if r.start_date and r.end_date and r.state in ("success", "failed")
        ]
        instances = [t for r in group for t in by_run[(dag_id, r.run_id)]]
        table.append(
            DagDay(
                dag_id=dag_id,
                day=day,
                runs=len(group),
                succeeded=sum(r.state == "success" for r in group),
                failed=sum(r.state == "failed" for r in group),
                running=sum(r.state in ("queued", "running") for r in group),
                median_seconds=statistics.median(finished) if finished else None,
                max_seconds=max(finished) if finished else None,
                failed_tasks=sum(t.state == "failed" for t in instances),
                retried_tasks=sum((t.try_number or 0) > 1 for t in instances),
            )
        )
    return table


def render(rows: list[DagDay]) -> str:
    """The table as text, one line per DAG and day."""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}s"

    header = f"{'DAG':<40} {'day':<10} {'runs':>4} {'ok':>3} {'fail':>4} {'run':>3} "
    header += f"{'median':>7} {'max':>7} {'task fail':>9} {'retried':>7}"
    lines = [header]
    for r in rows:
        lines.append(
            f"{r.dag_id:<40} {r.day.isoformat():<10} {r.runs:>4} {r.succeeded:>3} {r.failed:>4} "
            f"{r.running:>3} {seconds(r.median_seconds):>7} {seconds(r.max_seconds):>7} "
            f"{r.failed_tasks:>9} {r.retried_tasks:>7}"
        )
    return "\n".join(lines)
