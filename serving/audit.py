"""The API's audit log: every call, written to PostgreSQL in batches off the request path."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass

import psycopg

from citylake.settings import Settings

COLUMNS = (
    "at", "app", "department", "product", "path", "filters", "rows", "status", "client",
    "duration_ms",
)  # fmt: skip


@dataclass(frozen=True)
class Call:
    at: dt.datetime
    app: str | None
    department: str | None
    product: str | None
    path: str
    filters: dict
    rows: int
    status: int
    client: str | None
    duration_ms: float


class AuditLog:
    """Calls are appended in memory (no I/O); `flush` copies the batch into ``api_audit``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pending: list[Call] = []
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def record(self, call: Call) -> None:
        self._pending.append(call)  # list.append is atomic under the GIL

    def flush(self) -> int:
        """Write what is pending in one COPY; the number of calls written. A failed write keeps
        the batch for the next flush."""
        with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            seen: dict = {}  # a batch repeats few filter sets: serialize each once
            try:
                conn = self._connection()
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    cur.copy(f"COPY access.api_audit ({', '.join(COLUMNS)}) FROM STDIN") as copy,
                ):
                    for c in batch:
                        copy.write_row(
                            (
                                c.at, c.app, c.department, c.product, c.path,
                                _filters_json(c.filters, seen),
                                c.rows, c.status, c.client, c.duration_ms,
                            )
                        )  # fmt: skip
            except Exception:
                self._pending[:0] = batch
                self._close()
                raise
            return len(batch)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            from catalog.grants import connect

            self._conn = connect(self.settings)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _filters_json(filters: dict, seen: dict) -> str:
    key = tuple(sorted(filters.items()))
    text = seen.get(key)
    if text is None:
        text = seen[key] = json.dumps(filters, ensure_ascii=False, default=str)
    return text
