"""The payment system's database (一码付): the live tables `pay_transactions` and `pay_settlements`.

A stand-in with the schema a real payment system has, for tests and the demo. The platform
pulls it incrementally (`pipelines.channels.database`), so two things matter:

* **updated_at belongs to the database.** A trigger stamps every inserted or updated row with
  ``now()``, the start of the changing transaction (all rows of one change share it), and an
  index on ``(updated_at, key)`` serves the keyset pull. An ``updated_at`` in the rows handed to
  the loader is ignored, as a real system ignores a client's clock. `pay_settlements` has the
  column too although its feed does not deliver it: it is the watermark only.
* **Dirty data must be representable, as far as a typed database allows.** Columns are typed
  where a payment system types them (times ``timestamptz``, amounts ``bigint``, dates ``date``),
  but nothing enforces business rules that the platform's contracts check: amounts may be zero
  or negative (corrections and test payments exist), codes (channel, status, region, bank, the
  Y/N flag) are plain text without a CHECK so unknown values occur, and merchant_id/refund_of
  have no foreign key (unknown merchants and refunds of unknown originals reach the platform).
  What a typed column cannot hold at all — ``¥12`` or full-width digits in a bigint, ``昨天`` in a
  timestamptz, a missing key — never exists in such a database: the loader does not store those
  rows and reports each with its column and reason instead of guessing a value.

Rows are given as the generator produces them: feed column -> text or None; an empty string is
the database's NULL (a CSV's empty cell). Loading is one transaction and uses COPY; a key that
exists already is updated (a re-delivered row is a change to the same row), and a row whose
values are unchanged is left alone, so its updated_at does not move.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

Text = str | None
SOURCE_TIMEZONE = "Asia/Shanghai"  # the payment system's local time, for times without offset
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_BIGINT = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class SourceTable:
    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (feed column, SQL type); updated_at is the DB's

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


TRANSACTIONS = SourceTable(
    "pay_transactions",
    ("txn_id",),
    (
        ("txn_id", "text"),
        ("merchant_id", "text"),
        ("txn_time", "timestamptz"),
        ("amount_fen", "bigint"),
        ("channel", "text"),
        ("status", "text"),
        ("refund_of", "text"),
        ("payer_region_code", "text"),
        ("terminal_id", "text"),
    ),
)
SETTLEMENTS = SourceTable(
    "pay_settlements",
    ("merchant_id", "settle_date"),
    (
        ("merchant_id", "text"),
        ("settle_date", "date"),
        ("gross_fen", "bigint"),
        ("fee_fen", "bigint"),
        ("net_fen", "bigint"),
        ("settle_bank_code", "text"),
        ("settle_bank_local", "text"),
    ),
)
TABLES = {t.name: t for t in (TRANSACTIONS, SETTLEMENTS)}

SCHEMA = """
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();  -- start of the changing transaction: one change, one time
    RETURN NEW;
END
$$;

CREATE TABLE IF NOT EXISTS pay_transactions (
    txn_id            text PRIMARY KEY,
    merchant_id       text,
    txn_time          timestamptz,
    amount_fen        bigint,
    channel           text,
    status            text,
    refund_of         text,
    payer_region_code text,
    terminal_id       text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pay_transactions_changes ON pay_transactions (updated_at, txn_id);
CREATE OR REPLACE TRIGGER pay_transactions_touch BEFORE INSERT OR UPDATE ON pay_transactions
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE IF NOT EXISTS pay_settlements (
    merchant_id       text NOT NULL,
    settle_date       date NOT NULL,
    gross_fen         bigint,
    fee_fen           bigint,
    net_fen           bigint,
    settle_bank_code  text,
    settle_bank_local text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, settle_date)
);
CREATE INDEX IF NOT EXISTS pay_settlements_changes
    ON pay_settlements (updated_at, merchant_id, settle_date);
CREATE OR REPLACE TRIGGER pay_settlements_touch BEFORE INSERT OR UPDATE ON pay_settlements
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE SEQUENCE IF NOT EXISTS pay_refund_no;
"""


class Unrepresentable(ValueError):
    """A value that the database column's type cannot hold."""


@dataclass(frozen=True)
class RejectedRow:
    row: Mapping[str, Text]
    column: str
    value: Text
    reason: str


@dataclass
class LoadReport:
    """What a load did. received = inserted + updated + unchanged + len(rejected), where
    unchanged also counts rows superseded by a later row of the same key in the same load."""

    table: str
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


def create_schema(conn: psycopg.Connection) -> None:
    """Create the payment tables, their change index and the updated_at trigger (idempotent)."""
    with conn.transaction():
        conn.execute(SCHEMA)


def _typed(sql_type: str, value: Text, tz: ZoneInfo) -> object:
    """The database value of a delivered text; None for null or empty."""
    if value is None or value == "":
        return None
    if sql_type == "text":
        return value
    # Only plain ASCII forms: "¥12", "1,234" or full-width "１２" have no typed value.
    if sql_type == "bigint":
        if not _INTEGER.fullmatch(value) or not _BIGINT[0] <= int(value) <= _BIGINT[1]:
            raise Unrepresentable("not a whole number of fen")
        return int(value)
    if sql_type == "timestamptz":
        try:
            ts = dt.datetime.fromisoformat(value) if value.isascii() else None
        except ValueError:
            ts = None
        if ts is None:
            raise Unrepresentable("not an ISO 8601 time")
        return ts if ts.tzinfo is not None else ts.replace(tzinfo=tz)
    if sql_type == "date":
        try:
            day = dt.date.fromisoformat(value) if value.isascii() else None
        except ValueError:
            day = None
        if day is None:
            raise Unrepresentable("not an ISO 8601 date")
        return day
    raise ValueError(f"no conversion to {sql_type}")


def _row_values(table: SourceTable, row: Mapping[str, Text], tz: ZoneInfo) -> tuple[object, ...]:
    unknown = set(row) - set(table.column_names) - {"updated_at"}
    if unknown:
        raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
    values = []
    for name, sql_type in table.columns:
        try:
            value = _typed(sql_type, row.get(name), tz)
        except Unrepresentable as exc:
            raise Unrepresentable(name, row.get(name), str(exc)) from None
        if value is None and name in table.key:
            raise Unrepresentable(name, row.get(name), "missing key")
        values.append(value)
    return tuple(values)


def load_rows(
    conn: psycopg.Connection,
    table: SourceTable,
    rows: Iterable[Mapping[str, Text]],
    *,
    timezone: str = SOURCE_TIMEZONE,
) -> LoadReport:
    """Insert or update `rows` (feed column -> text) in one transaction, through COPY."""
    tz = ZoneInfo(timezone)
    report = LoadReport(table.name)
    latest: dict[tuple[object, ...], tuple[object, ...]] = {}  # key -> values, last one wins
    key_at = [table.column_names.index(k) for k in table.key]
    for row in rows:
        report.received += 1
        try:
            values = _row_values(table, row, tz)
        except Unrepresentable as exc:
            column, value, reason = exc.args
            report.rejected.append(RejectedRow(row, column, value, reason))
            continue
        latest[tuple(values[i] for i in key_at)] = values

    names = [sql.Identifier(n) for n in table.column_names]
    cols = sql.SQL(", ").join(names)
    target = sql.Identifier(table.name)
    upsert = sql.SQL(
        "INSERT INTO {target} ({cols}) SELECT {cols} FROM incoming "
        "ON CONFLICT ({key}) DO UPDATE SET {assign} "
        "WHERE ({current}) IS DISTINCT FROM ({proposed}) "
        "RETURNING (xmax = 0) AS inserted"  # xmax is 0 on a freshly inserted row version
    ).format(
        target=target,
        cols=cols,
        key=sql.SQL(", ").join(sql.Identifier(k) for k in table.key),
        assign=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(n) for n in names),
        current=sql.SQL(", ").join(sql.SQL("{}.{}").format(target, n) for n in names),
        proposed=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(n) for n in names),
    )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE incoming ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
            ).format(cols, target)
        )
        with cur.copy(sql.SQL("COPY incoming ({}) FROM STDIN").format(cols)) as copy:
            for values in latest.values():
                copy.write_row(values)
        cur.execute(upsert)
        inserted = [r[0] for r in cur.fetchall()]
        cur.execute("DROP TABLE incoming")  # a caller's enclosing transaction may load again
    report.inserted = sum(inserted)
    report.updated = len(inserted) - report.inserted
    report.unchanged = report.received - len(report.rejected) - len(inserted)
    return report


def load_transactions(
    conn: psycopg.Connection, rows: Iterable[Mapping[str, Text]], **kw: str
) -> LoadReport:
    return load_rows(conn, TRANSACTIONS, rows, **kw)


def load_settlements(
    conn: psycopg.Connection, rows: Iterable[Mapping[str, Text]], **kw: str
) -> LoadReport:
    return load_rows(conn, SETTLEMENTS, rows, **kw)


def update_rows(
    conn: psycopg.Connection,
    table: SourceTable,
    changes: Mapping[tuple[str, ...], Mapping[str, Text]],
    *,
    timezone: str = SOURCE_TIMEZONE,
) -> int:
    """Late updates: change columns of existing rows (key values as text -> new values as
    text), in one transaction; the trigger moves their updated_at. Returns rows changed."""
    tz = ZoneInfo(timezone)
    types = dict(table.columns)
    changed = 0
    with conn.transaction():
        for key, new in changes.items():
            if not new or set(new) & {*table.key, "updated_at"} or set(new) - set(types):
                raise ValueError(f"cannot set {sorted(new)} on {table.name} (key {table.key})")
            assign = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in new)
            where = sql.SQL(" AND ").join(
                sql.SQL("{} = %s").format(sql.Identifier(k)) for k in table.key
            )
            params = [_typed(types[c], v, tz) for c, v in new.items()]
            params += [_typed(types[k], v, tz) for k, v in zip(table.key, key, strict=True)]
            stmt = sql.SQL("UPDATE {} SET {} WHERE {}").format(
                sql.Identifier(table.name), assign, where
            )
            changed += conn.execute(stmt, params).rowcount
    return changed


def reverse_transactions(conn: psycopg.Connection, txn_ids: Iterable[str]) -> int:
    """Late reversals: the same transactions, now with status `reversed`."""
    return update_rows(conn, TRANSACTIONS, {(t,): {"status": "reversed"} for t in txn_ids})


def refund_transactions(
    conn: psycopg.Connection,
    refunds: Mapping[str, int | None],
    *,
    at: dt.datetime | None = None,
    timezone: str = SOURCE_TIMEZONE,
) -> dict[str, str]:
    """Refunds: one new row per original (txn_id -> fen, None for the full amount) with status
    `refund` and refund_of set, at `at` (default now). Returns original -> refund txn_id."""
    originals = list(refunds)
    with conn.transaction():
        known = {
            r[0]
            for r in conn.execute(
                "SELECT txn_id FROM pay_transactions WHERE txn_id = ANY(%s)", [originals]
            )
        }
        if missing := sorted(set(originals) - known):
            raise ValueError(f"no such transactions to refund: {missing[:10]}")
        rows = conn.execute(
            """
            INSERT INTO pay_transactions (txn_id, merchant_id, txn_time, amount_fen, channel,
                                          status, refund_of, payer_region_code, terminal_id)
            SELECT 'RF' || to_char(coalesce(%(at)s, now()) AT TIME ZONE %(tz)s, 'YYYYMMDD')
                        || lpad(nextval('pay_refund_no')::text, 8, '0'),
                   o.merchant_id, coalesce(%(at)s, now()), coalesce(r.fen, o.amount_fen),
                   o.channel, 'refund', o.txn_id, o.payer_region_code, o.terminal_id
            FROM unnest(%(ids)s::text[], %(fen)s::bigint[]) WITH ORDINALITY AS r(txn_id, fen, n)
            JOIN pay_transactions o USING (txn_id)
            ORDER BY r.n
            RETURNING refund_of, txn_id
            """,
            {"at": at, "tz": timezone, "ids": originals, "fen": [refunds[t] for t in originals]},
        ).fetchall()
    return dict(rows)
