"""Cross checks: what a contract says across rows or tables (its `cross_checks`), judged at the
DWD→DWS gate beside the column checks and recorded, alerted and work-ordered like them.

GX expectations see one frame a column at a time, so each cross check is one Spark aggregate
of our own whose few result rows are judged here in Python, into a ``CheckResult`` that
``quality.gate.enforce`` adds to the table's outcome (its policy decides: warn, or block).

- `references`: every value of a column in the rows the gate judges exists in another table
  (a settlement's merchant is registered). One left join against the other table's distinct
  values, counted in one pass; the examples are the unknown values.
- `daily_band`: a day's total lies within [low, high] × the median total of the previous
  `window` days that have rows (looked for within 2 × `window` calendar days). One group-by
  day from that far before the first judged day (a partition filter, so the scan does not
  grow with the table's history), with a flag for the judged ones; the examples are the days
  outside with their total and band. A day with fewer than `min_days` earlier days is not
  judged.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable
from decimal import Decimal

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from quality.gate import CheckResult
from warehouse_layers.contract import DailyBand, GatePolicy, References, TableContract

EXAMPLES = 10  # as many offending values as a gate outcome keeps of a column check


def cross_check_results(
    table: TableContract,
    rows: DataFrame,
    where: str | None,
    read: Callable[[str], DataFrame],
) -> list[CheckResult]:
    """Every cross check of `table` on its `rows` (the whole table); `where` (SQL) picks the
    rows judged, all when None; `read` gives another table's rows by name."""
    results = []
    for check in table.cross_checks:
        severity = table.policy(check.key)
        if isinstance(check, References):
            scope = rows.where(where) if where else rows
            results.append(references(scope, read(check.table), check, severity))
        else:
            results.append(daily_band(rows, where, check, severity))
    return results


def references(
    scope: DataFrame, target: DataFrame, check: References, severity: GatePolicy
) -> CheckResult:
    """`check` on the rows of `scope` against the rows of `target`. A null is not judged (the
    column's not-null check says whether it may be null), as GX does."""
    value = F.col(check.column)
    known = target.select(value).distinct().withColumn("_known", F.lit(True))
    unknown = F.when(F.col("_known").isNull(), value)  # null for a known value or a null one
    counts = (
        scope.select(value)
        .join(F.broadcast(known), check.column, "left")  # registries are small
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(unknown).alias("unknown"),
            F.slice(F.sort_array(F.collect_set(unknown)), 1, EXAMPLES).alias("examples"),
        )
        .first()
    )
    assert counts is not None  # a global aggregate has one row
    rows, bad = counts["rows"], counts["unknown"]
    return CheckResult(
        check=check.describe(),
        severity=severity,
        success=bad == 0,
        unexpected_count=bad,
        unexpected_percent=100 * bad / rows if rows else 0.0,
        examples=[str(v) for v in counts["examples"]],
    )


# How far back, in windows, the days with rows are looked for: the history of a judged day is
# the last `window` days with rows among the LOOKBACK_WINDOWS × `window` calendar days before
# it. It bounds the scan (a partition filter) where the table's history keeps growing.
LOOKBACK_WINDOWS = 2


def daily_band(
    rows: DataFrame, where: str | None, check: DailyBand, severity: GatePolicy
) -> CheckResult:
    """`check` on the days of `rows` (the whole table) that `where` selects."""
    judged = F.expr(where) if where else F.lit(True)
    rows = rows.where(F.col(check.day).isNotNull())  # a row without its day has no day to judge
    if where:
        first = rows.where(where).agg(F.min(check.day)).first()
        if first is None or first[0] is None:  # nothing to judge
            return judge_days({}, set(), check, severity)
        reach = first[0] - dt.timedelta(days=LOOKBACK_WINDOWS * check.window)
        rows = rows.where(F.col(check.day) >= F.lit(reach))
    days = (
        rows.groupBy(check.day)
        .agg(_total(check).alias("total"), F.max(judged).alias("judged"))
        .collect()
    )
    totals = {r[check.day]: _number(r["total"]) for r in days}
    return judge_days(totals, {r[check.day] for r in days if r["judged"]}, check, severity)


def _total(check: DailyBand) -> Column:
    """The day's total: each column summed (a column of nulls counts 0), added or subtracted."""
    add = [F.coalesce(F.sum(c), F.lit(0)) for c in check.add]
    subtract = [F.coalesce(F.sum(c), F.lit(0)) for c in check.subtract]
    total = add[0]
    for column in add[1:]:
        total = total + column
    for column in subtract:
        total = total - column
    return total


def judge_days(
    totals: dict[dt.date, float],
    judged: set[dt.date],
    check: DailyBand,
    severity: GatePolicy,
) -> CheckResult:
    """The band check of each day in `judged`, against the totals of the days before it."""
    ordered = sorted(totals)
    seen = 0
    outside = []
    for i, day in enumerate(ordered):
        history = [totals[d] for d in ordered[max(0, i - check.window) : i]]
        if day not in judged or len(history) < check.min_days:
            continue
        seen += 1
        median = statistics.median(history)
        # sorted: a negative median (refunds above trade) turns the factors around
        low, high = sorted((check.low * median, check.high * median))
        if not low <= totals[day] <= high:
            outside.append(
                f"{day}: {_amount(totals[day])} outside [{_amount(low)}, {_amount(high)}]"
                f" (median {_amount(median)})"
            )
    return CheckResult(
        check=check.describe(),
        severity=severity,
        success=not outside,
        unexpected_count=len(outside),  # days, not rows: a day is what is judged
        unexpected_percent=100 * len(outside) / seen if seen else 0.0,
        examples=outside[:EXAMPLES],
    )


def _number(value: int | float | Decimal | None) -> float:
    return float(value) if value is not None else 0.0


def _amount(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
