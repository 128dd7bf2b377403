"""Build the DWS/ADS models for a date range: one SQLMesh prod plan, rolled back on a failed audit.

A build names the DWD tables it rebuilt and the runs of days it rebuilt them for. A first plan
deploys model changes and marks the days up to the last one as built without computing them
(``empty_backfill``): a build computes exactly the days it names, as before SQLMesh. Then one
restatement plan per run of days restates those external models, which cascades to every model
downstream of them: incremental models rewrite exactly those days (one REPLACE WHERE commit
each; a monthly one the months they fall in), full models (the indicators with growth over
months or years) are recomputed whole, by the last plan that reaches them. Days that changed
for one table alone (a corrected tax period, orders bound anew) get plans of their own first,
restating only that table.

Audits run after SQLMesh writes. So the runner records each model table's Delta version first
and, when an audit fails, RESTOREs every model table to it (one commit each) before raising
``GateBlocked``: a failed audit leaves the cockpit as it was, and the intervals stay unbuilt so
the next build retries them.
"""

from __future__ import annotations

import datetime as dt
import json
from calendar import monthrange
from collections.abc import Collection, Iterable, Mapping, Sequence

from sqlmesh.core.node import IntervalUnit
from sqlmesh.utils.errors import SQLMeshError

from citylake.settings import Settings
from citylake.spark import get_spark
from pipelines import tables
from pipelines.modeling.engine import register_tables, restore_write_mode
from pipelines.modeling.headers import MODEL_LAYERS
from pipelines.modeling.project import context
from quality.alerts import notify
from quality.gate import CheckResult, GateBlocked, GateResult, alert_for, record
from warehouse_layers.contract import input_roots

# The one check the model audits report as: every audit of every model of the run (forall over
# the contract's column checks, key uniqueness). A failure names the model in its detail.
MODEL_AUDITS = "model audits"


def day_runs(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Contiguous runs of the given days: one plan per run restates exactly those days."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def run_days(runs: Iterable[tuple[dt.date, dt.date]]) -> set[dt.date]:
    """Every day of the given runs (`day_runs` turned back)."""
    return {a + dt.timedelta(days=i) for a, b in runs for i in range((b - a).days + 1)}


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of `day`'s month."""
    return day.replace(day=1), day.replace(day=monthrange(day.year, day.month)[1])


def further_plans(
    rebuilt: Sequence[str],
    runs: Sequence[tuple[dt.date, dt.date]],
    restated: Mapping[str, Collection[dt.date]],
    last: dt.date,
    by_month: Collection[str] = (),
) -> list[tuple[list[str], dt.date, dt.date]]:
    """The restatements of single tables beyond the `runs`: each run of their days (up to
    `last`, the build's last day) with the tables that changed in it.

    A table `by_month` (only monthly or FULL models read it) is restated by whole months, and
    not at all in a month the runs restate already: its models recompute whole months, so
    one plan per run of months does, where days apart would each cost one."""
    covered = run_days(runs)
    months = {month_of(day) for day in covered}
    further = {}
    for name in (n for n in rebuilt if n in restated):
        days = {d for d in restated[name] if d <= last}
        if name in by_month:
            spans = {month_of(d) for d in days} - months
            days = {d for d in run_days(spans) if d <= last}
        further[name] = days - covered
    return [
        ([n for n in rebuilt if any(start <= d <= end for d in further.get(n, ()))], start, end)
        for start, end in day_runs(set().union(*further.values()))
    ]


def _table(fqn: str) -> str:
    """A model's table name from its fully qualified name."""
    return fqn.split(".")[-1].strip('"')


def build_models(
    rebuilt: Sequence[str],
    runs: Sequence[tuple[dt.date, dt.date]],
    input_versions: dict[str, int],
    settings: Settings,
    held: Sequence[str] = (),
    restated: Mapping[str, Collection[dt.date]] | None = None,
) -> list[str]:
    """Restate the models downstream of the `rebuilt` DWD tables over each run of days.

    `restated` names further days of single rebuilt tables, beyond the runs (a superseded tax
    period, the orders a merchant's new version binds anew): each run of those days restates
    only the tables that changed in it, so the models below them (the monthly ones, by month)
    recompute it and the daily models of other tables do not. These plans come first, and a
    FULL model is computed only by the last plan that restates it: once per build.

    A model downstream of a `held` DWD table (one a gate blocked) is not computed, also when
    it reads rebuilt tables too: it keeps its rows until a build promotes that table again.

    `input_versions` are the table versions the build pinned (ODS, and those of tables built
    from no other table that it pinned, such as the gate outcomes); each ADS row carries those
    of its own input roots. The outcome of the model audits is recorded like a gate's, passed
    or failed. Returns the model tables the plans touched.
    """
    if not rebuilt or not runs:
        return []
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    ctx = context(settings)
    models = {_table(m.name) for m in ctx.models.values()}
    rebuilt = [name for name in rebuilt if name in models]  # DWD tables that some model reads
    register_tables(spark, [contracts[name] for name in sorted(models)], settings)
    for name in models:  # each model's input roots at the versions this build read
        pins = {r: input_versions[r] for r in input_roots(name, contracts) if r in input_versions}
        spark.conf.set(f"citylake.input_versions.{name}", json.dumps(pins, sort_keys=True))
    owned = [contracts[n] for n in sorted(models) if contracts[n].layer in MODEL_LAYERS]
    before = {t.name: tables.version(spark, t, settings) for t in owned}
    audited = ", ".join(t.name for t in owned)  # restored together, so judged together

    def downstream(names: Sequence[str]) -> set[str]:
        return {
            fqn
            for name in names
            if name in models
            for fqn in ctx.dag.downstream(ctx.get_model(f"dwd.{name}").fqn)
        }

    def monthly(fqn: str) -> bool:  # computed by whole months, or whole
        model = ctx.get_model(fqn)
        return model.kind.is_full or model.interval_unit == IntervalUnit.MONTH

    withheld = downstream(held)
    last = max(end for _, end in runs)
    by_month = [name for name in rebuilt if all(map(monthly, downstream([name])))]
    further = further_plans(rebuilt, runs, restated or {}, last, by_month)
    plans = [*further, *((rebuilt, *r) for r in runs)]
    # Each plan's models to compute: those below its tables but the withheld ones and the FULL
    # ones a later plan recomputes whole anyway (a restated model left out keeps its rows).
    computed = [downstream(names) - withheld for names, _, _ in plans]
    later: set[str] = set()
    for i in reversed(range(len(plans))):
        full = {fqn for fqn in computed[i] if ctx.get_model(fqn).kind.is_full}
        computed[i], later = computed[i] - later, later | full
    everything = set().union(*computed)
    if withheld and not everything:
        return []  # everything below the rebuilt tables waits for a held one
    # Restating a DWD table cascades to every model below it; only `computed` are backfilled
    # (a withheld model keeps its rows; a later build that restates those days computes it).
    touched = sorted(_table(fqn) for fqn in everything)
    if withheld:  # the audits judge what this build computes, for the feeds behind it only
        audited = ", ".join(touched)
    try:
        # Deploy model changes (creates prod on the first build) and mark every day up to the
        # last one as built without computing it: a build computes exactly the days it names.
        ctx.plan(
            "prod",
            execution_time=last + dt.timedelta(days=1),
            empty_backfill=True,
            auto_apply=True,
            no_prompts=True,
            skip_tests=True,
        )
        for (names, start, end), models_of in zip(plans, computed, strict=True):
            if not models_of:
                continue  # a later plan computes all of it
            backfill = None
            if models_of != downstream(names):
                backfill = [f"{contracts[_table(f)].layer}.{_table(f)}" for f in sorted(models_of)]
            ctx.plan(
                "prod",
                restate_models=[f"dwd.{name}" for name in names],
                backfill_models=backfill,
                start=start,
                end=end,
                execution_time=end + dt.timedelta(days=1),
                auto_apply=True,
                no_prompts=True,
                skip_tests=True,
            )
    except SQLMeshError as error:
        for table in owned:
            if tables.version(spark, table, settings) != before[table.name]:
                path = tables.table_path(table, settings)
                spark.sql(f"RESTORE TABLE delta.`{path}` TO VERSION AS OF {before[table.name]}")
        result = GateResult(
            gate="dws/ads audit",
            table=audited,
            rows=0,
            checks=[CheckResult(MODEL_AUDITS, "block", False, None, None, [])],
            detail=str(error)[:2000],
        )
        record(result, settings)
        raise GateBlocked(result, notify(alert_for(result), settings)) from error
    finally:
        restore_write_mode(spark)
    passed = CheckResult(MODEL_AUDITS, "block", True, 0, 0.0, [])
    record(GateResult(gate="dws/ads audit", table=audited, rows=0, checks=[passed]), settings)
    return touched
