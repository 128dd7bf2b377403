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
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo

import pyspark.sql.functions as F
from pyspark.sql import SparkSession

from citylake.settings import Settings, get_settings
from citylake.spark import get_spark
from pipelines import tables
from pipelines.landing import DeliveryRead, read_delivery

_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TXN_VERSION = 1  # bump only if the ODS layout of a delivery ever changes


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
    position = b"" if cursor is None else json.dumps(cursor, sort_keys=True).encode() + b"\0"
    return hashlib.sha256(feed.encode() + b"\0" + position + data).hexdigest()[:32]


def business_date_of(path: Path, settings: Settings) -> dt.date:
    """`<feed>/<yyyy-mm-dd>/<file>` names the business date; otherwise it is today (+08:00)."""
    if _DATE_DIR.match(path.parent.name):
        return dt.date.fromisoformat(path.parent.name)
    return dt.datetime.now(ZoneInfo(settings.timezone)).date()


def _logged(spark: SparkSession, settings: Settings, did: str) -> DeliveryResult | None:
    log = tables.read(spark, tables.contract("ods_delivery_log", settings), settings=settings)
    rows = log.where(F.col("delivery_id") == did).limit(1).collect()
    if not rows:
        return None
    logged = rows[0].asDict()
    names = [f.name for f in fields(DeliveryResult) if f.name != "already_ingested"]
    return DeliveryResult(**{n: logged[n] for n in names}, already_ingested=True)


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
    spark = get_spark(settings)
    ods = tables.feed_contract(feed, settings)
    assert ods.feed is not None
    path = path.resolve()
    data = path.read_bytes()
    did = delivery_id(feed, data, cursor)
    source = source or str(path)
    previous = _logged(spark, settings, did)
    if previous is not None:
        return previous
    started = dt.datetime.now(dt.UTC)
    bdate = business_date or business_date_of(path, settings)
    columns = [c.name for c in ods.feed_columns]
    read: DeliveryRead = read_delivery(path, columns, feed)
    txn = (f"citylake-ingest-{did}", TXN_VERSION)

    if read.records:
        n = len(read.records)
        rows: dict[str, list] = {c: [r.values.get(c) for r in read.records] for c in columns}
        rows |= {
            "_delivery_id": [did] * n,
            "_business_date": [bdate] * n,
            "_source_file": [source] * n,
            "_source_line": [r.line for r in read.records],
            "_ingested_at": [started] * n,
        }
        tables.append(tables.from_columns(spark, rows, ods), ods, txn=txn, settings=settings)

    quarantine = tables.contract("ods_quarantine", settings)
    if read.rejects:
        n = len(read.rejects)
        rejects = {
            "feed": [feed] * n,
            "delivery_id": [did] * n,
            "business_date": [bdate] * n,
            "source_file": [source] * n,
            "source_line": [r.line for r in read.rejects],
            "reason_code": [r.reason for r in read.rejects],
            "detail": [r.detail for r in read.rejects],
            "raw_record": [r.raw for r in read.rejects],
            "quarantined_at": [started] * n,
        }
        tables.append(
            tables.from_columns(spark, rejects, quarantine), quarantine, txn=txn, settings=settings
        )

    loaded, quarantined = len(read.records), len(read.rejects)
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
    log = tables.contract("ods_delivery_log", settings)
    row = {
        **result.as_json(),
        "business_date": bdate,
        "channel": channel,
        "cursor": None if cursor is None else json.dumps(cursor, sort_keys=True),
        "owner_department": ods.owner_department,
        "started_at": started,
        "finished_at": dt.datetime.now(dt.UTC),
    }
    row.pop("already_ingested")
    tables.append(
        spark.createDataFrame([row], schema=log.spark_schema_ddl()), log, txn=txn, settings=settings
    )
    return result


def ingest_files(
    feed: str,
    paths: list[Path],
    *,
    business_date: dt.date | None = None,
    settings: Settings | None = None,
) -> list[DeliveryResult]:
    """Ingest files in order (a directory means every file under it, sorted)."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    return [ingest_file(f, feed, business_date=business_date, settings=settings) for f in files]


def summary_json(results: list[DeliveryResult]) -> str:
    return json.dumps([r.as_json() for r in results], ensure_ascii=False, indent=2)
