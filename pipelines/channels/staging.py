"""Staging pulled batches as deliveries, so a pull resumes exactly where it committed.

A pull (a database batch, an exchange page) is first written to ``var/staged/<feed>/`` as a JSON
Lines file with a sidecar that names its channel, source and *cursor* (the channel's position
after this batch). Renaming the data file into place is the staging commit. The staged file is
then ingested like any landing file; its ``ods_delivery_log`` row carries the cursor, so the
watermark advances in the same commit as the data and never ahead of it.

After a crash, the next pull first ingests whatever is staged (never re-pulling it), then asks
the log for the last committed cursor. The delivery id covers the cursor and the content, so
re-ingesting a staged batch is a no-op and two different positions are never confused.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from citylake.settings import Settings, get_settings
from pipelines import tables
from pipelines.ingest import DeliveryResult, ingest_file

Cursor = dict[str, Any]


@dataclass(frozen=True)
class StagedBatch:
    feed: str
    path: Path  # the JSON Lines delivery
    channel: str  # database | exchange
    source: str  # what was pulled, e.g. postgresql://host:port/db/table or the exchange URL
    cursor: Cursor  # the channel's position once this batch is committed
    business_date: dt.date


def staging_dir(feed: str, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).var_dir / "staged" / feed


def _meta_path(data: Path) -> Path:
    return data.with_suffix(".meta.json")


def _write_atomically(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def stage(
    feed: str,
    records: Iterable[Mapping[str, object]],
    *,
    channel: str,
    source: str,
    cursor: Cursor,
    business_date: dt.date,
    settings: Settings | None = None,
) -> StagedBatch | None:
    """Write one pulled batch as a staged delivery; None when the batch is empty.

    Values are written as delivered text (None stays null), the way ODS keeps them.
    """
    rows = [
        {k: (None if v is None else v if isinstance(v, str) else str(v)) for k, v in r.items()}
        for r in records
    ]
    if not rows:
        return None
    folder = staging_dir(feed, settings)
    folder.mkdir(parents=True, exist_ok=True)
    # Names sort in pull order; the nanosecond clock keeps them unique within a process.
    data = folder / f"{time.time_ns():020d}.jsonl"
    meta = {
        "feed": feed,
        "channel": channel,
        "source": source,
        "cursor": cursor,
        "business_date": business_date.isoformat(),
    }
    _write_atomically(_meta_path(data), lambda fh: json.dump(meta, fh, ensure_ascii=False))
    _write_atomically(
        data,
        lambda fh: fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
    )
    return _batch(data)


def _batch(data: Path) -> StagedBatch:
    meta = json.loads(_meta_path(data).read_text(encoding="utf-8"))
    return StagedBatch(
        feed=meta["feed"],
        path=data,
        channel=meta["channel"],
        source=meta["source"],
        cursor=meta["cursor"],
        business_date=dt.date.fromisoformat(meta["business_date"]),
    )


def pending(feed: str, settings: Settings | None = None) -> list[StagedBatch]:
    """Staged batches not yet known to be ingested, oldest first."""
    folder = staging_dir(feed, settings)
    if not folder.is_dir():
        return []
    for orphan in folder.glob("*.tmp"):  # a crash mid-write: that batch was never staged
        orphan.unlink()
    batches = []
    for data in sorted(folder.glob("*.jsonl")):
        if _meta_path(data).is_file():
            batches.append(_batch(data))
    for meta in folder.glob("*.meta.json"):  # sidecar whose data file never landed
        if not meta.with_name(meta.name.removesuffix(".meta.json") + ".jsonl").exists():
            meta.unlink()
    return batches


def ingest_batch(batch: StagedBatch, settings: Settings | None = None) -> DeliveryResult:
    """Ingest one staged batch exactly once, then remove it from staging."""
    result = ingest_file(
        batch.path,
        batch.feed,
        business_date=batch.business_date,
        channel=batch.channel,
        source=batch.source,
        cursor=batch.cursor,
        settings=settings,
    )
    # Data first, as staging commits it last: a crash in between leaves a sidecar without
    # data, which `pending` removes; data without its sidecar would stay forever.
    batch.path.unlink(missing_ok=True)
    _meta_path(batch.path).unlink(missing_ok=True)
    return result


def ingest_pending(feed: str, settings: Settings | None = None) -> list[DeliveryResult]:
    return [ingest_batch(b, settings) for b in pending(feed, settings)]


def last_cursor(feed: str, settings: Settings | None = None) -> Cursor | None:
    """The cursor of `feed`'s newest committed pulled delivery; None before the first pull."""
    settings = settings or get_settings()
    # Read through delta-rs like the rest of ingestion: a pull needs no JVM.
    log = tables.read_native(
        tables.contract("ods_delivery_log", settings),
        (pc.field("feed") == feed) & pc.field("cursor").is_valid(),
        settings,
    ).select(["finished_at", "cursor"])
    if log.num_rows == 0:
        return None
    newest = pc.sort_indices(
        log, sort_keys=[("finished_at", "descending"), ("cursor", "descending")]
    )[0].as_py()
    return json.loads(log["cursor"][newest].as_py())
