"""Quality work orders (质量工单): every failed gate check becomes an order a department owns.

An order is keyed by (table, check) while it is not closed: the same check failing again on
the same table updates that order (last seen, run, counts, sample) instead of opening another.
It moves open → acknowledged → fixed → verified → closed, one step at a time; any other move is
refused with ``IllegalTransition``. A check that fails again on an order already marked fixed
or verified sends it back to open (the fix did not hold). Every move, the gate's included, is
kept in ``work_order_event`` with who, when and a comment.

The orders live in PostgreSQL, in a database of their own (``Settings.work_orders``), by
default on the project's own server beside the source database. The schema is created on
first use; on our own loopback server the role and database are provisioned too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg

from citylake.platform_db import PlatformDatabase
from citylake.settings import Settings, get_settings
from quality.gate import GateResult

STATUSES = ("open", "acknowledged", "fixed", "verified", "closed")
# The one legal next status of each status, and the verb the CLI uses for it.
NEXT = {"open": "acknowledged", "acknowledged": "fixed", "fixed": "verified", "verified": "closed"}
VERBS = {"ack": "acknowledged", "fix": "fixed", "verify": "verified", "close": "closed"}
GATE_ACTOR = "quality-gate"

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS quality;
CREATE TABLE IF NOT EXISTS quality.work_order (
    id               bigserial PRIMARY KEY,
    table_name       text        NOT NULL,
    check_name       text        NOT NULL,
    gate             text        NOT NULL,
    department       text        NOT NULL,
    severity         text        NOT NULL,
    status           text        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'fixed', 'verified', 'closed')),
    unexpected_count bigint,
    unexpected_percent double precision,
    rows_checked     bigint,
    sample           jsonb       NOT NULL DEFAULT '[]',
    detail           text,
    failures         integer     NOT NULL DEFAULT 1,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    run_id           text        NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- At most one order per table and check that is not closed: a repeat failure updates it.
CREATE UNIQUE INDEX IF NOT EXISTS work_order_active
    ON quality.work_order (table_name, check_name) WHERE status <> 'closed';
CREATE TABLE IF NOT EXISTS quality.work_order_event (
    id          bigserial PRIMARY KEY,
    order_id    bigint      NOT NULL REFERENCES quality.work_order (id),
    from_status text,
    to_status   text        NOT NULL,
    actor       text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    comment     text,
    run_id      text
);
"""


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow."""


class OrderNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Touched:
    """What one failed check did to the orders: opened, updated or reopened order `id`."""

    id: int
    action: str
    table: str
    check: str


DATABASE = PlatformDatabase("work_orders", SCHEMA, "work-order database")
connect = DATABASE.connect


def _department(table: str, settings: Settings) -> str:
    """The owner department of the checked table's contract (a model audit may name several
    tables, comma-separated: their departments, joined)."""
    from pipelines.tables import contracts

    known = contracts(settings)
    names = [n.strip() for n in table.split(",")]
    departments = dict.fromkeys(known[n].owner_department for n in names if n in known)
    return "、".join(departments) or "未登记"


def open_orders(
    results: Iterable[GateResult],
    *,
    run_id: str | None = None,
    settings: Settings | None = None,
    conn: psycopg.Connection | None = None,
) -> list[Touched]:
    """Open or update an order for every failed check of `results`, in one transaction."""
    settings = settings or get_settings()
    failed = [(r, c) for r in results for c in r.failed]
    if not failed:
        return []
    touched: list[Touched] = []
    with DATABASE.using(conn, settings) as conn, conn.transaction():
        for result, check in failed:
            touched.append(_upsert(conn, result, check, run_id, settings))
    return touched


def _upsert(conn, result: GateResult, check, run_id: str | None, settings: Settings) -> Touched:
    run = run_id or f"{result.gate}@{result.at}"
    seen = dt.datetime.fromisoformat(result.at)
    sample = json.dumps(check.examples[: settings.work_orders.sample_rows], ensure_ascii=False)
    row = conn.execute(
        "SELECT id, status FROM quality.work_order "
        "WHERE table_name = %s AND check_name = %s AND status <> 'closed' FOR UPDATE",
        [result.table, check.check],
    ).fetchone()
    figures = [
        check.severity,
        check.unexpected_count,
        check.unexpected_percent,
        result.rows,
        sample,
        result.detail,
        seen,
        run,
    ]
    if row is None:
        order_id = conn.execute(
            "INSERT INTO quality.work_order (table_name, check_name, gate, department, severity,"
            " unexpected_count, unexpected_percent, rows_checked, sample, detail, first_seen,"
            " last_seen, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            [
                result.table,
                check.check,
                result.gate,
                _department(result.table, settings),
                *figures[:6],
                seen,
                seen,
                run,
            ],
        ).fetchone()["id"]
        _event(conn, order_id, None, "open", GATE_ACTOR, _summary(result, check), run)
        return Touched(order_id, "opened", result.table, check.check)
    order_id, status = row["id"], row["status"]
    # A failure on an order marked fixed or verified: the fix did not hold, it is open again.
    reopen = status in ("fixed", "verified")
    conn.execute(
        "UPDATE quality.work_order SET severity = %s, unexpected_count = %s,"
        " unexpected_percent = %s, rows_checked = %s, sample = %s, detail = %s,"
        " last_seen = greatest(last_seen, %s), run_id = %s, failures = failures + 1,"
        " status = CASE WHEN %s THEN 'open' ELSE status END, updated_at = now() WHERE id = %s",
        [*figures, reopen, order_id],
    )
    if reopen:
        comment = "复发，重新打开：" + _summary(result, check)
        _event(conn, order_id, status, "open", GATE_ACTOR, comment, run)
        return Touched(order_id, "reopened", result.table, check.check)
    return Touched(order_id, "updated", result.table, check.check)


def _summary(result: GateResult, check) -> str:
    return (
        f"质量门 {result.gate} 检查 {check.check} 未通过：{check.unexpected_count} 行异常"
        f"（共检查 {result.rows} 行）"
    )


def _event(conn, order_id, from_status, to_status, actor, comment, run_id=None) -> None:
    conn.execute(
        "INSERT INTO quality.work_order_event (order_id, from_status, to_status, actor, comment,"
        " run_id) VALUES (%s, %s, %s, %s, %s, %s)",
        [order_id, from_status, to_status, actor, comment, run_id],
    )


def transition(
    order_id: int,
    to_status: str,
    *,
    by: str,
    comment: str | None = None,
    settings: Settings | None = None,
    conn: psycopg.Connection | None = None,
) -> dict:
    """Move an order one step on; IllegalTransition names the move and the one allowed."""
    if to_status not in STATUSES:
        raise IllegalTransition(f"unknown status {to_status!r}; statuses: {', '.join(STATUSES)}")
    if not by.strip():
        raise IllegalTransition("a transition needs who made it (--by)")
    with DATABASE.using(conn, settings) as conn:
        with conn.transaction():
            row = conn.execute(
                "SELECT status FROM quality.work_order WHERE id = %s FOR UPDATE", [order_id]
            ).fetchone()
            if row is None:
                raise OrderNotFound(f"no work order {order_id}")
            current = row["status"]
            if NEXT.get(current) != to_status:
                allowed = NEXT.get(current)
                hint = f"the next step is {allowed}" if allowed else "a closed order stays closed"
                raise IllegalTransition(
                    f"work order {order_id} is {current}: cannot move to {to_status} ({hint})"
                )
            conn.execute(
                "UPDATE quality.work_order SET status = %s, updated_at = now() WHERE id = %s",
                [to_status, order_id],
            )
            _event(conn, order_id, current, to_status, by, comment)
        return get(order_id, conn=conn)


def get(order_id: int, *, settings: Settings | None = None, conn=None) -> dict:
    """One order with its history (``events``, oldest first)."""
    with DATABASE.using(conn, settings) as conn:
        order = conn.execute(
            "SELECT * FROM quality.work_order WHERE id = %s", [order_id]
        ).fetchone()
        if order is None:
            raise OrderNotFound(f"no work order {order_id}")
        order["events"] = conn.execute(
            "SELECT from_status, to_status, actor, at, comment, run_id"
            " FROM quality.work_order_event WHERE order_id = %s ORDER BY id",
            [order_id],
        ).fetchall()
        return order


def list_orders(
    *,
    status: Sequence[str] | None = None,
    department: str | None = None,
    settings: Settings | None = None,
    conn=None,
) -> list[dict]:
    """Orders, newest failure first, optionally of some statuses and one department."""
    with DATABASE.using(conn, settings) as conn:
        return conn.execute(
            "SELECT * FROM quality.work_order"
            " WHERE (%(status)s::text[] IS NULL OR status = ANY(%(status)s::text[]))"
            " AND (%(department)s::text IS NULL OR department = %(department)s::text)"
            " ORDER BY last_seen DESC, id DESC",
            {"status": list(status) if status else None, "department": department},
        ).fetchall()
