"""Running a gate: validate a Spark frame against checks and stop promotion on a blocking failure.

A gate sits between two layers. It validates the data about to be promoted (or just promoted)
and raises ``GateBlocked`` naming the gate, the table and each failed check, so the caller stops
everything downstream. Every outcome is appended to ``var/quality/gate_runs.jsonl``, and to the
list of each ``collecting()`` block it happens in: a build keeps its outcomes as rows of
``dwd_gate_outcome`` that way (pipelines/dwd/gate_outcome.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace

from pyspark.sql import DataFrame

from citylake.settings import Settings, get_settings
from quality.alerts import Alert, notify
from quality.suites import Check

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class CheckResult:
    check: str
    severity: str
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    examples: list[str]


@dataclass(frozen=True)
class GateResult:
    gate: str  # e.g. "ods→dwd"
    table: str
    rows: int
    checks: list[CheckResult] = field(default_factory=list)
    detail: str | None = None  # what the caller knows beyond GX's sample, e.g. full reason counts
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success]

    @property
    def blocked(self) -> bool:
        return any(c.severity == "block" for c in self.failed)

    @property
    def quarantined(self) -> list[CheckResult]:
        """The failed checks whose rows are moved out (policy `quarantine`)."""
        return [c for c in self.failed if c.severity == "quarantine"]

    def describe(self) -> str:
        if not self.failed:
            return (
                f"gate {self.gate} passed on {self.table}: "
                f"{len(self.checks)} checks, {self.rows} rows"
            )
        verdict = (
            "BLOCKED" if self.blocked else "quarantined rows" if self.quarantined else "warned"
        )
        lines = [f"gate {self.gate} {verdict} on table {self.table}:"]
        for c in self.failed:
            share = f"{c.unexpected_percent:.2f}%" if c.unexpected_percent is not None else "?"
            lines.append(
                f"  check failed [{c.severity}] {c.check}: {c.unexpected_count} rows "
                f"({share}) unexpected, e.g. {', '.join(c.examples[:5])}"
            )
        if self.detail:
            lines.append(f"  {self.detail}")
        return "\n".join(lines)


class GateBlocked(RuntimeError):
    """Promotion stopped. Raising it announces the block through the alert channels."""

    def __init__(self, result: GateResult, alerts: dict[str, str] | None = None) -> None:
        super().__init__(result.describe())
        self.result = result
        self.alerts = alerts or {}  # channel -> 'sent' or why not


# GX contexts not in use. Validations side by side (a build's domain units, pipelines/units.py)
# each borrow one: GX's context and its data sources are not made to be shared, and a context
# costs its set-up once, not once per thread or gate.
_IDLE: queue.SimpleQueue = queue.SimpleQueue()


@contextmanager
def _batch_definition() -> Iterator:
    try:
        batch_definition = _IDLE.get_nowait()
    except queue.Empty:
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False}
        source = context.data_sources.add_spark(name="citylake")
        asset = source.add_dataframe_asset(name="candidate")
        batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    try:
        yield batch_definition
    finally:
        _IDLE.put(batch_definition)


def validate(
    df: DataFrame,
    checks: list[Check],
    *,
    gate: str,
    table: str,
    settings: Settings | None = None,
    keep: bool = True,
) -> GateResult:
    """The outcome of every check on `df`; `keep` records it (the caller records it otherwise)."""
    import great_expectations as gx

    with _batch_definition() as batch_definition:  # and the GX context the suite needs
        suite = gx.ExpectationSuite(name=f"{gate}:{table}")
        for check in checks:
            # The check's name and severity ride along in `meta` to label GX's unordered results.
            meta = {"check": check.name, "severity": check.severity}
            suite.add_expectation(check.expectation.copy(update={"meta": meta}, deep=True))
        df = df.cache()
        rows = df.count()
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        # Pass or fail first: a SUMMARY also samples the unexpected rows of every check, a Spark job
        # each even when there are none, which doubled a gate's time. Only the failed checks are
        # validated again for their counts and samples. No check has `mostly`, so a passed check
        # had no unexpected row.
        outcome = batch.validate(suite, result_format="BOOLEAN_ONLY")
        failed = {r.expectation_config.meta["check"] for r in outcome.results if not r.success}
        details = {}
        if failed:
            again = gx.ExpectationSuite(name=f"{gate}:{table}:failed")
            for expectation in suite.expectations:
                if expectation.meta["check"] in failed:
                    again.add_expectation(expectation.copy(deep=True))
            for r in batch.validate(again, result_format="SUMMARY").results:
                details[r.expectation_config.meta["check"]] = r.result
    df.unpersist()
    results = []
    for r in outcome.results:
        meta = r.expectation_config.meta
        detail = details.get(meta["check"], {"unexpected_count": 0, "unexpected_percent": 0.0})
        results.append(
            CheckResult(
                check=meta["check"],
                severity=meta["severity"],
                success=bool(r.success),
                unexpected_count=detail.get("unexpected_count"),
                unexpected_percent=detail.get("unexpected_percent"),
                examples=_examples(detail),
            )
        )
    result = GateResult(gate=gate, table=table, rows=rows, checks=results)
    if keep:
        record(result, settings or get_settings())
    return result


def _examples(result: dict) -> list[str]:
    """Distinct offending values from GX's sample of unexpected rows, in order of appearance."""
    sample = [str(v) for v in result.get("partial_unexpected_list") or []]
    return list(dict.fromkeys(sample))[:10]


def enforce(
    df: DataFrame,
    checks: list[Check],
    *,
    gate: str,
    table: str,
    settings: Settings | None = None,
    explain: Callable[[], str] | None = None,
    quarantine: Callable[[GateResult], str] | None = None,
    judged: Sequence[CheckResult] = (),
) -> GateResult:
    """Validate; on a blocking failure, alert every configured channel and raise GateBlocked.

    `judged` are outcomes of checks GX cannot run, the caller's own (the contract's cross
    checks, quality/cross_checks.py): they join the outcome as they are and their policy
    counts like any check's.
    `explain`, called only on a block, adds what GX's sample cannot say (e.g. full counts).
    `quarantine`, called when only checks of policy `quarantine` (and `warn`) failed, moves
    their failing rows out of the table and says what it moved; without it such a failure
    blocks, since the rows would go on. The outcome is recorded once, with that detail.
    """
    settings = settings or get_settings()
    result = validate(df, checks, gate=gate, table=table, settings=settings, keep=False)
    result = replace(result, checks=[*result.checks, *judged])
    if result.quarantined and quarantine is None:
        blocking = [
            replace(c, severity="block") if c in result.quarantined else c for c in result.checks
        ]
        result = replace(result, checks=blocking)
    if result.blocked:
        if explain is not None:
            result = replace(result, detail=explain())
        record(result, settings)
        raise GateBlocked(result, notify(alert_for(result), settings))
    if result.quarantined and quarantine is not None:
        result = replace(result, detail=quarantine(result))
    record(result, settings)
    return result


def enforce_share(
    check: str,
    counts: dict[str | None, int],
    max_share: float,
    *,
    gate: str,
    table: str,
    settings: Settings | None = None,
) -> GateResult:
    """A blocking limit on the share of bad rows, from counts the caller took in one pass.

    `counts` maps each reason (None = a good row) to its rows. The ODS→DWD gate of every feed
    is this one ratio; one Spark aggregate gives it and every reason's full count, where a GX
    validation costs seconds of fixed overhead per feed and samples the reasons.
    """
    rows = sum(counts.values())
    bad = {reason: n for reason, n in counts.items() if reason is not None}
    unexpected = sum(bad.values())
    share = unexpected / rows if rows else 0.0
    top = sorted(bad.items(), key=lambda item: (-item[1], item[0]))
    result = GateResult(
        gate=gate,
        table=table,
        rows=rows,
        checks=[
            CheckResult(
                check=check,
                severity="block",
                success=share <= max_share,
                unexpected_count=unexpected,
                unexpected_percent=100 * share,
                examples=[reason for reason, _ in top[:10]],
            )
        ],
        detail="quarantine reasons: " + ", ".join(f"{r} {n}" for r, n in top) if top else None,
    )
    record(result, settings or get_settings())
    if result.blocked:
        raise GateBlocked(result, notify(alert_for(result), settings))
    return result


def alert_for(result: GateResult) -> Alert:
    return Alert(
        title=f"【数据质量告警】{result.table} 未通过质量门 {result.gate}，已停止向下游发布",
        body=f"质量门拦截：{result.table} 的数据未发布到下游，请责任部门核查。\n\n"
        f"{result.describe()}\n\n时间(UTC)：{result.at}",
        gate=result.gate,
        table=result.table,
        severity="block",
        at=result.at,
    )


# The lists of the `collecting()` blocks open in this context, innermost last.
_COLLECTORS: ContextVar[tuple[list[GateResult], ...]] = ContextVar("gate_outcomes", default=())


@contextmanager
def collecting() -> Iterator[list[GateResult]]:
    """A list that receives every gate outcome recorded inside the block, in order."""
    outcomes: list[GateResult] = []
    token = _COLLECTORS.set((*_COLLECTORS.get(), outcomes))
    try:
        yield outcomes
    finally:
        _COLLECTORS.reset(token)


_RECORDING = threading.Lock()  # one line at a time, whole, from units side by side


def record(result: GateResult, settings: Settings) -> None:
    log = settings.var_dir / "quality" / "gate_runs.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(result), ensure_ascii=False) + "\n"
    with _RECORDING, log.open("a", encoding="utf-8") as fh:
        fh.write(line)
    for outcomes in _COLLECTORS.get():
        outcomes.append(result)
