"""The process `test_ingest_crash` kills: ingests every feed of all three channels once.

``python -m tests.crash_child <seed> <trace file>`` pulls every database and exchange feed and
ingests every landing feed's folder, in an order drawn from `seed`. Settings come from the
``CITYLAKE_*`` environment. The code under test runs unchanged; thin wrappers only append
``+phase`` / ``-phase`` lines with a time stamp to the trace file (unbuffered), so the parent
can tell in which phase its SIGKILL landed.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_trace_fd = -1


def _mark(line: str) -> None:
    if _trace_fd >= 0:  # a syscall, not a buffer: what was written survives SIGKILL
        os.write(_trace_fd, f"{time.time():.3f} {line}\n".encode())


def _traced(label: Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = label(*args, **kwargs)
        _mark(f"+{name}")
        result = fn(*args, **kwargs)
        _mark(f"-{name}")
        return result

    return wrapper


def _instrument() -> None:
    from pipelines import ingest, tables
    from pipelines.channels import exchange, staging

    # Module attributes are looked up at call time, so the callers see the wrappers.
    tables.append_native = _traced(
        lambda data, table, **_: f"write {'ODS ' if table.feed is not None else ''}{table.name}",
        tables.append_native,
    )
    staging.stage = _traced(lambda *_, **__: "stage", staging.stage)
    staging.ingest_batch = _traced(lambda *_, **__: "ingest staged", staging.ingest_batch)
    staging.last_cursor = _traced(lambda *_, **__: "read cursor", staging.last_cursor)
    ingest.read_delivery = _traced(lambda *_, **__: "parse", ingest.read_delivery)
    exchange.fetch_page = _traced(lambda *_, **__: "fetch page", exchange.fetch_page)


def main(seed: int, trace: Path) -> None:
    global _trace_fd
    _trace_fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _mark("+start")
    from citylake.settings import get_settings
    from pipelines import tables
    from pipelines.channels.pull import pull_feed, pulled_feeds
    from pipelines.ingest import ingest_files

    _instrument()
    settings = get_settings()
    landing = [
        c.feed.name
        for c in tables.contracts(settings).values()
        if c.feed is not None and c.feed.channel == "landing"
    ]
    rng = random.Random(seed)
    units = [("pull", f) for f in pulled_feeds(settings)] + [("ingest", f) for f in landing]
    rng.shuffle(units)
    _mark("-start")
    for kind, feed in units:
        _mark(f"+{kind} {feed}")
        if kind == "pull":
            pull_feed(feed, settings=settings)
        else:
            folder = Path(settings.landing) / feed
            if folder.is_dir():  # parallel sometimes: deliveries commit concurrently then
                ingest_files(feed, [folder], workers=rng.choice((1, 2)), settings=settings)
        _mark(f"-{kind} {feed}")
    _mark("done")


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
    # Everything is committed; skip the interpreter's teardown, where Arrow's native thread
    # pool sometimes aborts ("terminate called without an active exception", apache/arrow#34314)
    # after the work is done and would turn a clean run into a failed round.
    sys.stdout.flush()
    os._exit(0)
