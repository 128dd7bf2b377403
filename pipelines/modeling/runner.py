"""Build the DWS/ADS models for a date range: one SQLMesh prod plan, rolled back on a failed audit.

A build names the DWD tables it rebuilt and the runs of days it rebuilt them for. A first plan
deploys model changes and marks the days up to the last one as built without computing them
(``empty_backfill``): a build computes exactly the days it names, as before SQLMesh. Then one
restatement plan per run of days restates those external models, which cascades to every model
downstream of them: incremental models rewrite exactly those days (one REPLACE WHERE commit
each), full models (the monthly and yearly indicators) are recomputed whole.

Audits run after SQLMesh writes. So the runner records each model table's Delta version first
and, when an audit fails, RESTOREs every model table to it (one commit each) before raising
``GateBlocked``: a failed audit leaves the cockpit as it was, and the intervals stay unbuilt so
the next build retries them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence

from sqlmesh.utils.errors import SQLMeshError

from citylake.settings import Settings
from citylake.spark import get_spark
from pipelines import tables
from pipelines.modeling.engine import register_tables, restore_write_mode
from pipelines.modeling.headers import MODEL_LAYERS
from pipelines.modeling.project import context
from quality.alerts import notify
from quality.gate import CheckResult, GateBlocked, GateResult, alert_for, record
from warehouse_layers.contract import TableContract


def day_runs(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Contiguous runs of the given days: one plan per run restates exactly those days."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def ods_ancestors(name: str, contracts: dict[str, TableContract]) -> set[str]:
    """The ODS tables `name` is built from, following the contracts' `upstream` links."""
    table = contracts[name]
    if table.layer == "ods":
        return {name}
    return {o for parent in table.upstream for o in ods_ancestors(parent, contracts)}


def build_models(
    rebuilt: Sequence[str],
    runs: Sequence[tuple[dt.date, dt.date]],
    input_versions: dict[str, int],
    settings: Settings,
) -> list[str]:
    """Restate the models downstream of the `rebuilt` DWD tables over each run of days.

    `input_versions` are the ODS versions the build pinned; each ADS row carries those of its
    own ODS ancestors. Returns the model tables the plans touched.
    """
    if not rebuilt or not runs:
        return []
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    ctx = context(settings)
    models = {m.name.split(".")[-1] for m in ctx.models.values()}
    rebuilt = [name for name in rebuilt if name in models]  # DWD tables that some model reads
    register_tables(spark, [contracts[name] for name in sorted(models)], settings)
    for name in models:  # each model's ODS ancestors at the versions this build read
        pins = {o: input_versions[o] for o in ods_ancestors(name, contracts) if o in input_versions}
        spark.conf.set(f"citylake.input_versions.{name}", json.dumps(pins, sort_keys=True))
    owned = [contracts[n] for n in sorted(models) if contracts[n].layer in MODEL_LAYERS]
    before = {t.name: tables.version(spark, t, settings) for t in owned}
    touched = sorted(
        {
            fqn.split(".")[-1].strip('"')
            for name in rebuilt
            for fqn in ctx.dag.downstream(ctx.get_model(f"dwd.{name}").fqn)
        }
    )
    last = max(end for _, end in runs)
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
        for start, end in runs:
            ctx.plan(
                "prod",
                restate_models=[f"dwd.{name}" for name in rebuilt],
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
            table=", ".join(sorted(t.name for t in owned)),
            rows=0,
            checks=[CheckResult(str(error)[:2000], "block", False, None, None, [])],
        )
        record(result, settings)
        raise GateBlocked(result, notify(alert_for(result), settings)) from error
    finally:
        restore_write_mode(spark)
    return touched
