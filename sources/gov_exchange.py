"""Stand-in for the government data-sharing exchange (政务数据共享交换平台), for tests and the demo.

The exchange publishes every ``gov_*`` feed as an append-only *change feed*: each change of a
record is a new version, never an edit of an old one. A version's ``updated_at`` is its time in
the exchange, and the exchange keeps it strictly increasing per feed: the producer's
``updated_at`` (the time of publication when it has none or an unreadable one), but never
earlier than the feed's newest version plus one microsecond. So

* the order by ``updated_at`` is the publication order and new versions only ever append at
  the end: offset paging for a fixed ``updated_since`` is stable while the feed grows;
* no two versions share an ``updated_at``, so a client that resumes with
  ``updated_since = <the newest updated_at it committed>`` misses nothing and re-reads nothing.

Wire format (token in ``Authorization: Bearer <token>``)::

    GET /api/v1/feeds/{feed}?updated_since=<ISO 8601>&page=<n>&page_size=<m>
    -> {"feed", "updated_since", "page", "page_size", "total", "has_more",
        "records": [{<feed column>: <text or null>, ...}]}

``records`` are the versions with ``updated_at`` strictly after ``updated_since`` (all of them
when it is absent), ordered by ``updated_at``; ``page`` counts from 1; ``total`` counts them all
at the time of the request. Times are ISO 8601 with offset (+08:00); one without an offset is
read as +08:00. 401 without or with a wrong token, 404 for a feed the exchange does not publish,
422 for bad parameters. ``POST`` to the same path with ``{"records": [...]}`` publishes.

Versions live in SQLite (WAL) under ``<var_dir>/exchange/exchange.db``; the server binds to
127.0.0.1 on the port of ``settings.exchange.url`` and is started and stopped by pid.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json
import socket
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel

from citylake import processes
from citylake.processes import Service
from citylake.settings import PROJECT_ROOT, Settings, get_settings
from warehouse_layers.contract import load_contracts

SERVICE = "gov-exchange"
HOST = "127.0.0.1"  # every server the project starts binds to loopback only
CST = dt.timezone(dt.timedelta(hours=8))
MAX_PAGE_SIZE = 50_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TICK = dt.timedelta(microseconds=1)

Record = Mapping[str, str | None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order
    feed TEXT NOT NULL,
    updated_us INTEGER NOT NULL,            -- the version's updated_at, µs since the epoch (UTC)
    record TEXT NOT NULL,                   -- JSON object: feed column -> text or null
    published_at TEXT NOT NULL,
    record_key TEXT,                        -- JSON of the feed's key values
    content TEXT                            -- the record without updated_at (change detection)
);
-- Unique: two versions of one feed never share an updated_at (see the module docstring).
CREATE UNIQUE INDEX IF NOT EXISTS versions_by_time ON versions (feed, updated_us);
CREATE INDEX IF NOT EXISTS versions_by_key ON versions (feed, record_key, updated_us);
"""


# ---------------------------------------------------------------- feeds and times


def exchange_feeds(settings: Settings | None = None) -> dict[str, list[str]]:
    """The feeds the exchange publishes (contracts with channel ``exchange``) and their columns."""
    contracts = load_contracts((settings or get_settings()).contracts_dir)
    return {
        t.feed.name: [c.name for c in t.feed_columns]
        for t in contracts.values()
        if t.feed is not None and t.feed.channel == "exchange"
    }


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 with offset; none means +08:00. A ``+`` that arrived unescaped in a query string
    (so as a space) is read as the ``+`` it was."""
    text = text.strip()
    head, sep, tail = text.rpartition(" ")
    if sep and len(tail) == 5 and tail[2] == ":" and (tail[:2] + tail[3:]).isdigit():
        text = f"{head}+{tail}"
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=CST)


def format_time(value: dt.datetime) -> str:
    return value.astimezone(CST).isoformat()


def _to_us(value: dt.datetime) -> int:
    return (value - _EPOCH) // _TICK


def _from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _producer_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _key_columns(feed: str, settings: Settings) -> tuple[str, ...]:
    contracts = load_contracts(settings.contracts_dir)
    return next(t.feed.key for t in contracts.values() if t.feed and t.feed.name == feed)


# ---------------------------------------------------------------- the store


def database_path(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).var_dir / "exchange" / "exchange.db"


@contextlib.contextmanager
def _connect(settings: Settings) -> Iterator[sqlite3.Connection]:
    """One connection per call: sqlite3 connections are not shared between server threads."""
    path = database_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        yield conn
    finally:
        conn.close()


def publish(
    feed: str,
    records: Iterable[Record],
    settings: Settings | None = None,
    *,
    strict: bool = True,
) -> list[dict[str, str | None]]:
    """Append `records` to `feed` as new versions; return them as the exchange serves them.

    A record equal (but for ``updated_at``) to the latest version of its key is not a change
    and is not published again, so re-publishing a department's unchanged data is a no-op.

    Records are published in the order of their own ``updated_at`` (input order among equals),
    each stamped with its exchange ``updated_at`` (see the module docstring). A field that is
    not a column of the feed is an error, unless ``strict=False`` (a producer's schema drift,
    which the lakehouse must quarantine).
    """
    settings = settings or get_settings()
    feeds = exchange_feeds(settings)
    if feed not in feeds:
        raise KeyError(f"the exchange does not publish {feed!r}; it publishes {sorted(feeds)}")
    columns = feeds[feed]
    rows: list[dict[str, str | None]] = []
    for number, record in enumerate(records, start=1):
        unknown = sorted(set(record) - set(columns))
        if unknown and strict:
            raise ValueError(f"{feed} record {number}: fields {unknown} are not columns of {feed}")
        row = {c: record.get(c) for c in columns} | {k: record[k] for k in unknown}
        rows.append({k: None if v is None else str(v) for k, v in row.items()})
    if not rows:
        return []
    # Stable sort by the producer's time, unparsable ones last: a batch lands in change order.
    times = [_producer_time(r.get("updated_at")) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: (times[i] is None, times[i] or _EPOCH))
    with _connect(settings) as conn:
        conn.execute("BEGIN IMMEDIATE")  # newest time read and new versions written atomically
        try:
            (newest,) = conn.execute(
                "SELECT MAX(updated_us) FROM versions WHERE feed = ?", (feed,)
            ).fetchone()
            now = dt.datetime.now(dt.UTC)
            published = now.isoformat()
            stored: list[dict[str, str | None]] = []
            key_columns = _key_columns(feed, settings)
            for i in order:
                content = json.dumps(
                    {k: v for k, v in rows[i].items() if k != "updated_at"},
                    ensure_ascii=False,
                    sort_keys=True,
                )
                record_key = json.dumps([rows[i].get(k) for k in key_columns], ensure_ascii=False)
                latest = conn.execute(
                    "SELECT content FROM versions WHERE feed = ? AND record_key = ? "
                    "ORDER BY updated_us DESC LIMIT 1",
                    (feed, record_key),
                ).fetchone()
                if latest is not None and latest[0] == content:
                    continue  # unchanged: not a new version
                stamp = times[i] or now
                if newest is not None:
                    stamp = max(stamp, _from_us(newest) + _TICK)
                newest = _to_us(stamp)
                row = rows[i] | {"updated_at": format_time(stamp)}
                conn.execute(
                    "INSERT INTO versions (feed, updated_us, record, published_at, record_key, "
                    "content) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        feed,
                        newest,
                        json.dumps(row, ensure_ascii=False),
                        published,
                        record_key,
                        content,
                    ),
                )
                stored.append(row)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return stored


def read_page(
    feed: str,
    *,
    updated_since: dt.datetime | None,
    page: int,
    page_size: int,
    settings: Settings | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(total, records of `page`) of the versions after `updated_since`, in change order."""
    settings = settings or get_settings()
    since = -(2**63) if updated_since is None else _to_us(updated_since)
    with _connect(settings) as conn:
        conn.execute("BEGIN")  # one snapshot for the count and the page
        try:
            (total,) = conn.execute(
                "SELECT COUNT(*) FROM versions WHERE feed = ? AND updated_us > ?", (feed, since)
            ).fetchone()
            rows = conn.execute(
                "SELECT record FROM versions WHERE feed = ? AND updated_us > ? "
                "ORDER BY updated_us, seq LIMIT ? OFFSET ?",
                (feed, since, page_size, (page - 1) * page_size),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
    return total, [json.loads(r[0]) for r in rows]


# ---------------------------------------------------------------- the HTTP service


class PublishRequest(BaseModel):
    records: list[dict[str, str | None]]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    feeds = exchange_feeds(settings)
    token = settings.exchange.token.get_secret_value().encode()
    app = FastAPI(title="citylake government data-sharing exchange (stand-in)")

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        # A dependency, so a request without the token learns nothing else (not even a 422).
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            raise HTTPException(
                401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"}
            )

    def known(feed: str) -> str:
        if feed not in feeds:
            raise HTTPException(
                404, f"the exchange does not publish {feed!r}; it publishes {sorted(feeds)}"
            )
        return feed

    @app.get("/api/v1/feeds/{feed}", dependencies=[Depends(require_token)])
    def changes(
        feed: str,
        updated_since: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE)] = None,
    ) -> dict[str, Any]:
        known(feed)
        since = None
        if updated_since:
            try:
                since = parse_time(updated_since)
            except (ValueError, OverflowError):
                raise HTTPException(
                    422, f"updated_since {updated_since!r} is not an ISO 8601 time"
                ) from None
        size = page_size or settings.exchange.page_size
        total, records = read_page(
            feed, updated_since=since, page=page, page_size=size, settings=settings
        )
        return {
            "feed": feed,
            "updated_since": None if since is None else format_time(since),
            "page": page,
            "page_size": size,
            "total": total,
            "has_more": page * size < total,
            "records": records,
        }

    @app.post("/api/v1/feeds/{feed}", dependencies=[Depends(require_token)])
    def publish_records(feed: str, body: PublishRequest) -> dict[str, Any]:
        known(feed)
        try:
            stored = publish(feed, body.records, settings)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {
            "feed": feed,
            "published": len(stored),
            "first_updated_at": stored[0]["updated_at"] if stored else None,
            "last_updated_at": stored[-1]["updated_at"] if stored else None,
        }

    return app


def _port(settings: Settings) -> int:
    url = urlsplit(settings.exchange.url)
    if url.port is None:
        raise ValueError(f"exchange.url {settings.exchange.url!r} names no port")
    return url.port


def start_exchange(settings: Settings | None = None, *, timeout: float = 30.0) -> Service:
    """Start the exchange in the background (unless it runs) and wait until it listens."""
    settings = settings or get_settings()
    port = _port(settings)
    svc = processes.service(SERVICE, settings)
    if not svc.running:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                # Else wait_for_port would greet the stranger while our server dies on bind.
                raise RuntimeError(f"{HOST}:{port} is taken by another process; set exchange.url")
    env = {
        "CITYLAKE_VAR_DIR": str(settings.var_dir),
        "CITYLAKE_CONTRACTS_DIR": str(settings.contracts_dir),
        "CITYLAKE_EXCHANGE__URL": settings.exchange.url,
        "CITYLAKE_EXCHANGE__TOKEN": settings.exchange.token.get_secret_value(),
        "CITYLAKE_EXCHANGE__PAGE_SIZE": str(settings.exchange.page_size),
    }
    svc = processes.start(
        SERVICE,
        [sys.executable, "-m", "sources.gov_exchange"],
        env=env,
        cwd=PROJECT_ROOT,
        settings=settings,
    )
    processes.wait_for_port(HOST, port, timeout=timeout, svc=svc)
    return svc


def stop_exchange(settings: Settings | None = None) -> bool:
    """Stop the exchange by the pid it was started with; True if it was running."""
    return processes.stop(SERVICE, settings=settings)


def main() -> None:
    import uvicorn

    settings = get_settings()
    uvicorn.run(create_app(settings), host=HOST, port=_port(settings), log_level="info")


if __name__ == "__main__":
    main()
