"""Ingesting a delivery into ODS: exactly once, never losing a line.

A delivery is one file; its id is a hash of the feed and the file's bytes, so re-delivering the
same content is recognised and changes nothing. Rows go to the feed's ODS table, unreadable
records to ``ods_quarantine``, and one row to ``ods_delivery_log`` last: the log row is the
delivery's commit marker. Each of the three appends is a Delta idempotent write keyed by the
delivery id, so a rerun after a crash at any point skips what was committed and finishes the
rest, converging to exactly one copy of every line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from citylake.settings import Settings, get_settings
from pipelines import tables
from pipelines.landing import DeliveryRead, read_delivery

_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TXN_VERSION = 1  # bump only if the ODS layout of a delivery ever changes
_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class DeliveryResult:
    feed: str
    delivery_id: str
    source: str
    business_date: dt.date
    source_format: str
    delivered: int
    loaded: int
    quarantined: int
    status: str  # loaded | partially_loaded | rejected
    error: str | None
    already_ingested: bool = False

    @property
    def reconciles(self) -> bool:
        return self.loaded + self.quarantined == self.delivered

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["business_date"] = self.business_date.isoformat()
        return data


def delivery_id(feed: str, data: bytes, cursor: dict[str, object] | None = None) -> str:
    """Content hash; a pulled batch also hashes its cursor (the same rows at another position
    of the source are another delivery)."""
    digest = hashlib.sha256(feed.encode() + b"\0")
    if cursor is not None:
        digest.update(json.dumps(cursor, sort_keys=True).encode() + b"\0")
    digest.update(data)  # no concatenation: a delivery can be hundreds of MB
    return digest.hexdigest()[:32]


def business_date_of(path: Path, settings: Settings) -> dt.date:
    """`<feed>/<yyyy-mm-dd>/<file>` names the business date; otherwise it is today (+08:00)."""
    if _DATE_DIR.match(path.parent.name):
        return dt.date.fromisoformat(path.parent.name)
    return dt.datetime.now(ZoneInfo(settings.timezone)).date()


def _logged(settings: Settings, did: str) -> DeliveryResult | None:
    log = tables.contract("ods_delivery_log", settings)
    rows = tables.read_native(log, pc.field("delivery_id") == did, settings).to_pylist()
    if not rows:
        return None
    names = [f.name for f in fields(DeliveryResult) if f.name != "already_ingested"]
    return DeliveryResult(**{n: rows[0][n] for n in names}, already_ingested=True)


def _constant(value: object, n: int, type_: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n)


def ingest_file(
    path: Path,
    feed: str,
    *,
    business_date: dt.date | None = None,
    channel: str = "landing",
    source: str | None = None,
    cursor: dict[str, object] | None = None,
    settings: Settings | None = None,
) -> DeliveryResult:
    """Ingest one delivered file. Pulled channels pass their `channel`, the `source` they read
    and the `cursor` that this delivery commits (see `pipelines.channels.staging`)."""
    settings = settings or get_settings()
    ods = tables.feed_contract(feed, settings)
    assert ods.feed is not None
    path = path.resolve()
    data = path.read_bytes()
    did = delivery_id(feed, data, cursor)
    source = source or str(path)
    previous = _logged(settings, did)
    if previous is not None:
        return previous
    started = dt.datetime.now(dt.UTC)
    bdate = business_date or business_date_of(path, settings)
    columns = [c.name for c in ods.feed_columns]
    read: DeliveryRead = read_delivery(path, columns, feed, data=data)
    del data  # the parsed rows hold what is needed; a large file's bytes need not stay
    txn = (f"citylake-ingest-{did}", TXN_VERSION)

    if read.loaded:
        rows, lines = read.rows(columns)
        n = rows.num_rows
        rows = (
            rows.append_column("_delivery_id", _constant(did, n, pa.string()))
            .append_column("_business_date", _constant(bdate, n, pa.date32()))
            .append_column("_source_file", _constant(source, n, pa.string()))
            .append_column("_source_line", lines)
            .append_column("_ingested_at", _constant(started, n, _TIMESTAMP))
        )
        tables.append_native(rows, ods, txn=txn, settings=settings)

    if read.rejects:
        n = len(read.rejects)
        rejects = pa.table(
            {
                "feed": _constant(feed, n, pa.string()),
                "delivery_id": _constant(did, n, pa.string()),
                "business_date": _constant(bdate, n, pa.date32()),
                "source_file": _constant(source, n, pa.string()),
                "source_line": pa.array([r.line for r in read.rejects], pa.int64()),
                "reason_code": pa.array([r.reason for r in read.rejects], pa.string()),
                "detail": pa.array([r.detail for r in read.rejects], pa.string()),
                "raw_record": pa.array([r.raw for r in read.rejects], pa.string()),
                "quarantined_at": _constant(started, n, _TIMESTAMP),
            }
        )
        quarantine = tables.contract("ods_quarantine", settings)
        tables.append_native(rejects, quarantine, txn=txn, settings=settings)

    loaded, quarantined = read.loaded, len(read.rejects)
    status = (
        "rejected"
        if loaded == 0 and quarantined
        else ("partially_loaded" if quarantined else "loaded")
    )
    result = DeliveryResult(
        feed,
        did,
        source,
        bdate,
        read.source_format,
        read.delivered,
        loaded,
        quarantined,
        status,
        read.error,
    )
    row = {
        **result.as_json(),
        "business_date": bdate,
        "channel": channel,
        "owner_department": ods.owner_department,
        "started_at": started,
        "finished_at": dt.datetime.now(dt.UTC),
        "cursor": None if cursor is None else json.dumps(cursor, sort_keys=True),
    }
    row.pop("already_ingested")
    log = tables.contract("ods_delivery_log", settings)
    tables.append_native(pa.Table.from_pylist([row]), log, txn=txn, settings=settings)
    return result


def ingest_files(
    feed: str,
    paths: list[Path],
    *,
    business_date: dt.date | None = None,
    workers: int = 1,
    settings: Settings | None = None,
) -> list[DeliveryResult]:
    """Ingest files (a directory means every file under it, sorted); results in file order.

    Deliveries are independent commits, so `workers` > 1 ingests several at once: one parses
    while another writes (both release the GIL), which uses a second core.
    """
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])

    def one(f: Path) -> DeliveryResult:
        return ingest_file(f, feed, business_date=business_date, settings=settings)

    if workers <= 1 or len(files) <= 1:
        return [one(f) for f in files]
    if files:
        tables.ensure_native(tables.feed_contract(feed, settings), settings)  # create once
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, files))


def summary_json(results: list[DeliveryResult]) -> str:
    return json.dumps([r.as_json() for r in results], ensure_ascii=False, indent=2)
