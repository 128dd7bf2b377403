"""A build's gate outcomes as rows of ``dwd_gate_outcome``: one small append, no Spark job.

The gates record every outcome as it happens (``quality.gate.record``: the jsonl log, and the
list of each ``collecting()`` block). A build opens ``kept_outcomes`` around its work and calls
the ``flush`` it yields once before its models run, so the quality scorecard reads this build's
verdicts; whatever comes after (the model audits, or a gate that blocked the build) is appended
when the block ends, on success and on failure alike. Each flush is one delta-rs commit of a few
hundred rows at most.

Each row names the feeds its table derives from (the contracts' ``upstream`` lineage,
``warehouse_layers.contract.feeds_of``) and the business dates the gate covered: those of the
deliveries the build took in, its ``[start, end]``, or for a build of everything the first and
last business date in the delivery log.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc

from citylake.settings import Settings
from pipelines import tables
from quality.gate import GateResult, collecting
from warehouse_layers.contract import TableContract, feeds_of

log = logging.getLogger(__name__)

GATE_OUTCOME = "dwd_gate_outcome"


def covered_dates(
    start: dt.date | None, end: dt.date | None, settings: Settings
) -> tuple[dt.date | None, dt.date | None]:
    """The business dates a build's gates judged: its range, or every delivery's when open."""
    if start is not None and end is not None:
        return start, end
    delivery_log = tables.contract("ods_delivery_log", settings)
    dates = tables.read_native_current(delivery_log, settings=settings).column("business_date")
    bounds = pc.min_max(dates)
    return bounds["min"].as_py(), bounds["max"].as_py()


def table_feeds(table: str, contracts: dict[str, TableContract]) -> list[str]:
    """The feeds behind a gate's table; the model audits name several tables, comma-separated."""
    names = [name.strip() for name in table.split(",")]
    return sorted({feed for name in names for feed in feeds_of(name, contracts)})


def outcome_rows(
    results: Sequence[GateResult],
    covered: tuple[dt.date | None, dt.date | None],
    contracts: dict[str, TableContract],
) -> pa.Table:
    """One row per check of each result, in the columns of ``dwd_gate_outcome``."""
    rows = [
        {
            "run_at": dt.datetime.fromisoformat(result.at),
            "gate": result.gate,
            "table_name": result.table,
            "feeds": table_feeds(result.table, contracts),
            "date_from": covered[0],
            "date_to": covered[1],
            "check_name": check.check,
            "severity": check.severity,
            "success": check.success,
            "rows_checked": result.rows,
            "unexpected_count": check.unexpected_count,
            "unexpected_percent": check.unexpected_percent,
            "detail": result.detail,
        }
        for result in results
        for check in result.checks
    ]
    return pa.Table.from_pylist(rows, schema=tables.arrow_schema(contracts[GATE_OUTCOME]))


def append_outcomes(
    results: Sequence[GateResult],
    covered: tuple[dt.date | None, dt.date | None],
    settings: Settings,
) -> int:
    """Append the results' rows in one commit; how many rows."""
    contracts = tables.contracts(settings)
    rows = outcome_rows(results, covered, contracts)
    if rows.num_rows:
        tables.write_native(rows, contracts[GATE_OUTCOME], mode="append", settings=settings)
    return rows.num_rows


@contextmanager
def kept_outcomes(
    start: dt.date | None, end: dt.date | None, settings: Settings
) -> Iterator[Callable[[], int]]:
    """Collect the gate outcomes of the block; yield a flush that appends those not yet kept
    (and returns how many rows), and flush the rest when the block ends, also when it raises."""
    with collecting() as results:
        kept = 0

        def flush() -> int:
            nonlocal kept
            pending = results[kept:]
            kept += len(pending)
            if not pending:
                return 0
            return append_outcomes(pending, covered_dates(start, end, settings), settings)

        try:
            yield flush
        except BaseException:
            try:  # a blocked gate's outcome is the one to keep; never hide why the build failed
                flush()
            except Exception:
                log.exception("could not keep the gate outcomes of a failed build")
            raise
        flush()
