"""Pulling feeds from the payment system's database: incremental by `updated_at`, or in full.

A feed whose ODS contract says ``channel: database`` is the source table of the same name. A pull
reads it in pages ordered by ``(updated_at, key)`` and after the position of the last committed
page (keyset pagination: rows sharing one updated_at are never skipped or read twice across a
page boundary, however many share it). Each page is staged and ingested as one delivery whose
log row carries the cursor ``{"updated_at": ..., "key": [...]}`` of its last row, so the
watermark advances only in the same commit as the data (`pipelines.channels.staging`).

Crash at any point, then rerun: a page not yet fully staged is dropped and pulled again from the
committed cursor; a staged page is ingested first and never pulled again; ingesting is exactly
once by delivery id (a hash of cursor and content), so re-delivery of a page is a no-op.

Values are delivered as the feed standard writes them: times ISO 8601 in the platform's time
zone (+08:00), dates ISO, amounts as integer text, NULL as null.

What a watermark cannot see, and what is done about it:

* A transaction still open when a pull starts may commit rows whose updated_at (its start
  time) lies behind rows already pulled; a pure watermark would pass them for ever. A pull
  therefore takes only rows changed at least ``source_db.watermark_lag_seconds`` ago by the
  source's clock; write transactions longer than that lag can still be missed (set it above
  the longest one; a full reload repairs the rest).
* Deleted rows are not seen (payment systems reverse, they do not delete).

``full=True`` starts a full reload: every row again from the beginning, as new deliveries (the
cursor carries a ``reload`` mark, so pages equal to earlier ones are not mistaken for them).
Pulls that follow continue from the reload's end; a reload cut short by a crash is finished by
the next pull, which continues its cursor and mark.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from citylake.postgres import connect_source_db
from citylake.settings import Settings, get_settings
from pipelines import tables
from pipelines.channels import staging
from pipelines.ingest import DeliveryResult

CHANNEL = "database"
WATERMARK = "updated_at"


def feed_text(value: object, tz: ZoneInfo) -> str | None:
    """A database value as the feed standard delivers it."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        local = (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(tz)
        return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):  # before int: bool is an int
        return "Y" if value else "N"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _watermark_text(value: dt.datetime, tz: ZoneInfo) -> str:
    # Always microseconds: the cursor must compare exactly with the column.
    return value.astimezone(tz).isoformat(timespec="microseconds")


def _key_types(conn: psycopg.Connection, table: str, key: list[str]) -> list[str]:
    rel = conn.execute("SELECT to_regclass(%s)::oid", [sql.Identifier(table).as_string(conn)])
    oid = rel.fetchone()[0]  # type: ignore[index]
    if oid is None:
        raise RuntimeError(f"the source database has no table {table}")
    types = dict(
        conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
            [oid],
        ).fetchall()
    )
    missing = [c for c in [*key, WATERMARK] if c not in types]
    if missing:
        raise RuntimeError(f"source table {table} lacks columns {missing}")
    return [types[k] for k in key]


def _page_query(
    table: str, columns: list[str], key: list[str], key_types: list[str], after: bool
) -> sql.Composed:
    order = sql.SQL(", ").join(sql.Identifier(c) for c in [WATERMARK, *key])
    where = [sql.SQL("{} < %(bound)s").format(sql.Identifier(WATERMARK))]
    if after:
        position = sql.SQL(", ").join(
            [
                sql.SQL("%(updated_at)s::timestamptz"),
                *(
                    sql.SQL("{}::{}").format(sql.Placeholder(f"k{i}"), sql.SQL(t))
                    for i, t in enumerate(key_types)
                ),
            ]
        )
        where.append(sql.SQL("({}) > ({})").format(order, position))
    return sql.SQL(
        "SELECT {columns}, {watermark} FROM {table} WHERE {where} ORDER BY {order} LIMIT %(limit)s"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        watermark=sql.Identifier(WATERMARK),
        table=sql.Identifier(table),
        where=sql.SQL(" AND ").join(where),
        order=order,
    )


def pull_database(
    feed: str,
    *,
    full: bool = False,
    business_date: dt.date | None = None,
    settings: Settings | None = None,
) -> list[DeliveryResult]:
    """Pull `feed` from the source database into ODS; one delivery per page, in pull order.

    Staged pages left by an interrupted pull are ingested first and are part of the result.
    `business_date` (default: today in the platform's time zone) is recorded on each delivery.
    """
    settings = settings or get_settings()
    ods = tables.feed_contract(feed, settings)
    assert ods.feed is not None
    if ods.feed.channel != CHANNEL:
        raise ValueError(f"{feed} is delivered through {ods.feed.channel}, not the database")
    tz = ZoneInfo(settings.timezone)
    db = settings.source_db
    bdate = business_date or dt.datetime.now(tz).date()
    source = f"postgresql://{db.host}:{db.port}/{db.dbname}/{feed}"
    columns = [c.name for c in ods.feed_columns]
    key = list(ods.feed.key)

    results = staging.ingest_pending(feed, settings)  # resume: never re-pull what is staged
    cursor: dict[str, Any] | None = None if full else staging.last_cursor(feed, settings)
    reload = dt.datetime.now(tz).isoformat() if full else (cursor or {}).get("reload")

    with connect_source_db(settings, autocommit=True) as conn:
        key_types = _key_types(conn, feed, key)
        # One bound for the whole pull, by the source's clock: the pull ends even while the
        # source keeps writing, and rows younger than the lag wait for the next pull.
        bound = conn.execute(
            "SELECT now() - make_interval(secs => %s)", [db.watermark_lag_seconds]
        ).fetchone()[0]  # type: ignore[index]
        while True:
            params: dict[str, Any] = {"bound": bound, "limit": db.batch_rows}
            if cursor is not None:
                params["updated_at"] = cursor["updated_at"]
                params |= {f"k{i}": v for i, v in enumerate(cursor["key"])}
            query = _page_query(feed, columns, key, key_types, after=cursor is not None)
            rows = conn.execute(query, params).fetchall()
            if not rows:
                break
            records = [
                {c: feed_text(v, tz) for c, v in zip(columns, row[:-1], strict=True)}
                for row in rows
            ]
            last = rows[-1]
            cursor = {
                "updated_at": _watermark_text(last[-1], tz),
                "key": [feed_text(last[columns.index(k)], tz) for k in key],
            }
            if reload:
                cursor["reload"] = reload
            batch = staging.stage(
                feed,
                records,
                channel=CHANNEL,
                source=source,
                cursor=cursor,
                business_date=bdate,
                settings=settings,
            )
            assert batch is not None
            results.append(staging.ingest_batch(batch, settings))
            if len(rows) < db.batch_rows:
                break
    return results
