"""The Airflow DAGs, generated from the table contracts: adding a feed is adding its contract.

- One **feed DAG** per ODS contract with a ``feed``: scheduled by the feed's ``schedule`` in
  the city's time zone, for the period that just ended (the logical date on the city's clock is
  the business date), it takes the business date's delivery in through the feed's ``channel``
  (``landing``: every file of ``<landing>/<feed>/<date>/``; ``database``/``exchange``: a pull
  from the last committed cursor) and ends with the ODS gate, which emits the ODS table's Asset
  with the business date.
- One **layer DAG** per domain that has feeds: DWD (behind the ODS→DWD and DWD→DWS gates) then
  DWS and ADS, scheduled on the Assets of the ODS tables its DWD tables derive from (the
  contracts' ``upstream``): when all its daily inputs have new data, or any monthly one has.
  Its days are the business dates the triggering Asset events carry, or the run's
  ``conf`` ``{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`` (a backfill of a date range).

Parsing imports Airflow's SDK, the settings and the contracts only: every task imports
``pipelines.runs`` (and Spark) when it runs. Tasks exchange only JSON. Spark tasks share one
pool slot (``SPARK_POOL``) so one JVM runs at a time on a small node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from airflow.sdk import DAG, Asset, task
from airflow.timetables.interval import CronDataIntervalTimetable

from citylake.orchestrator import SPARK_POOL  # one slot: `citylake up` creates it
from citylake.settings import Settings, get_settings
from warehouse_layers.contract import TableContract, input_roots, load_contracts

Json = dict[str, Any]

TIMEZONE = "Asia/Shanghai"  # the city's clock: a day's data is complete after its midnight
START_DATE = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
# When a period's run starts, in the city's time: 02:00 after the day (or month) ends, and five
# past every hour for hourly feeds.
CRONS = {"@hourly": "5 * * * *", "@daily": "0 2 * * *", "@monthly": "0 2 1 * *"}


def task_defaults(settings: Settings) -> Json:
    """Every task's retry policy (settings.airflow) and its failure alert."""
    policy = settings.airflow
    return {
        "owner": "citylake",
        "retries": policy.retries,
        "retry_delay": dt.timedelta(seconds=policy.retry_delay_seconds),
        # a multiplier in Airflow 3 (True would mean 1.0)
        "retry_exponential_backoff": policy.retry_backoff,
        "max_retry_delay": dt.timedelta(seconds=policy.max_retry_delay_seconds),
        "on_failure_callback": alert_failure,
    }


FEED_PREFIX = "citylake_feed_"
LAYERS_PREFIX = "citylake_layers_"


def ods_asset(table: str) -> Asset:
    """The Asset an ODS table's feed DAG emits when the table has a business day's data."""
    return Asset(name=table, uri=f"citylake://ods/{table}", group="ods")


def alert_failure(context: Any) -> None:
    """on_failure_callback: a task that failed for good is announced through the alert
    channels (quality/alerts.py), in Chinese first, like a blocked gate."""
    from quality.alerts import Alert, notify

    ti = context["ti"]
    error = context.get("exception")
    alert = Alert(
        title=f"【任务失败】{ti.dag_id}.{ti.task_id} (task failed)",
        body=(
            f"DAG {ti.dag_id}, 任务 {ti.task_id}, 运行 {ti.run_id}, 第 {ti.try_number} 次尝试失败"
            f" (attempt {ti.try_number} failed): {error!r}"
        ),
        gate="airflow",
        table=ti.task_id,
        severity="error",
        at=dt.datetime.now(dt.UTC).isoformat(),
    )
    notify(alert)


@contextmanager
def fail_without_retry() -> Iterator[None]:
    """Data problems (a blocked gate, lost lines) fail at once: retrying cannot fix the data."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.runs import DeliveryNotReconciled, LayersHeld
    from quality.gate import GateBlocked

    try:
        yield
    except (GateBlocked, DeliveryNotReconciled, LayersHeld) as exc:
        raise AirflowFailException(str(exc)) from exc


def business_date(logical_date: dt.datetime | None, dag_run: Any) -> str:
    """The business day: the run's logical date on the city's clock (a scheduled run's is its
    interval's start, 02:00 of the day that just ended; `ds` would be its UTC date, a day
    early), or the run_after date for a run triggered without a logical date."""
    when = logical_date or dag_run.run_after
    return when.astimezone(ZoneInfo(TIMEZONE)).date().isoformat()


def feed_dag(table: TableContract, defaults: Json) -> DAG:
    """The feed's DAG: `ingest` (landing) or `pull` (database, exchange), then `gate_ods`."""
    feed = table.feed
    assert feed is not None
    asset = ods_asset(table.name)
    take_in = "ingest" if feed.channel == "landing" else "pull"
    where = (
        f"`<landing>/{feed.name}/<business date>/`"
        if feed.channel == "landing"
        else f"the {feed.channel}"
    )
    with DAG(
        dag_id=f"{FEED_PREFIX}{feed.name}",
        schedule=CronDataIntervalTimetable(CRONS[feed.schedule], timezone=TIMEZONE),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=defaults,
        tags=["citylake", "feed", table.domain, feed.channel],
        doc_md=(
            f"### {feed.name} · {table.description.zh}\n\n"
            f"{table.description.en}. Owner: {table.owner_department}. Channel `{feed.channel}`, "
            f"schedule `{feed.schedule}` ({TIMEZONE}); due {feed.deadline.describe(feed.period)}."
            f"\n\n1. `{take_in}`: the business date's deliveries from {where} into "
            f"`{table.name}`, exactly once (delivered = loaded + quarantined, or the task fails)."
            f"\n2. `gate_ods`: at most {feed.max_reject_rate:.0%} of the day's delivered lines "
            f"quarantined; on success emits the Asset `{table.name}` with the business date.\n\n"
            "Generated from the feed's contract (`pipelines/orchestration.py`)."
        ),
    ) as dag:
        if feed.channel == "landing":

            @task(task_id="ingest")
            def take(logical_date: dt.datetime | None = None, dag_run: Any = None) -> list[Json]:
                from pipelines.runs import ingest_day

                with fail_without_retry():
                    return ingest_day(feed.name, business_date(logical_date, dag_run))

        else:

            @task(task_id="pull")
            def take(logical_date: dt.datetime | None = None, dag_run: Any = None) -> list[Json]:
                from pipelines.runs import pull_day

                with fail_without_retry():
                    return pull_day(feed.name, business_date(logical_date, dag_run))

        @task(task_id="gate_ods", outlets=[asset], multiple_outputs=False)
        def gate_ods(
            deliveries: list[Json],
            logical_date: dt.datetime | None = None,
            dag_run: Any = None,
            outlet_events: Any = None,
        ) -> Json:
            from pipelines.runs import ods_gate

            day = business_date(logical_date, dag_run)
            with fail_without_retry():
                outcome = ods_gate(feed.name, day)
            outlet_events[asset].extra = {"feed": feed.name, "business_date": day}
            return outcome

        gate_ods(take())
    return dag


def domain_inputs(domain: str, contracts: dict[str, TableContract]) -> list[TableContract]:
    """The ODS tables with a feed that the domain's DWD tables derive from, by name."""
    roots = {
        root
        for t in contracts.values()
        if t.layer == "dwd" and t.domain == domain
        for root in input_roots(t.name, contracts)
    }
    return sorted(
        (contracts[r] for r in roots if contracts[r].feed is not None), key=lambda t: t.name
    )


def layer_schedule(inputs: list[TableContract]) -> Any:
    """All daily (and hourly) inputs updated, or any monthly one: a day is built once its
    daily feeds are in; a month's delivery rebuilds what it feeds whenever it comes."""
    daily = [ods_asset(t.name) for t in inputs if t.feed and t.feed.period == "day"]
    monthly = [ods_asset(t.name) for t in inputs if t.feed and t.feed.period == "month"]
    alternatives = [*([reduce(lambda a, b: a & b, daily)] if daily else []), *monthly]
    return reduce(lambda a, b: a | b, alternatives)


def days_of(params: Json, events: Any, dag_run: Any) -> tuple[str, str]:
    """The run's days: its conf's ``from``/``to``, else the business dates of the Asset events
    that triggered it, else (a manual run without conf) the day before the run."""
    if params.get("from"):
        return params["from"], params.get("to") or params["from"]
    dates = sorted(
        e.extra["business_date"]
        for evts in (events or {}).values()
        for e in evts
        if (e.extra or {}).get("business_date")
    )
    if dates:
        return dates[0], dates[-1]
    day = (dag_run.run_after.date() - dt.timedelta(days=1)).isoformat()
    return day, day


def layer_dag(domain: str, inputs: list[TableContract], defaults: Json) -> DAG:
    """The domain's DAG: `dwd` (ODS→DWD→gates, with the dimensions) then `dws_ads`."""
    with DAG(
        dag_id=f"{LAYERS_PREFIX}{domain}",
        schedule=layer_schedule(inputs),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        params={"from": None, "to": None},
        default_args={**defaults, "pool": SPARK_POOL},
        tags=["citylake", "layers", domain],
        doc_md=(
            f"### {domain}: DWD → DWS → ADS\n\n"
            f"Runs when its inputs have new data: {', '.join(t.name for t in inputs)}.\n\n"
            "1. `dwd`: the domain's DWD tables (and the conformed dimensions) for the run's days "
            "and the restatement window before them, behind the ODS→DWD and DWD→DWS gates.\n"
            "2. `dws_ads`: the DWS and ADS models downstream of what `dwd` rebuilt, stamped with "
            "the pinned ODS versions.\n\n"
            'Days: the Asset events\' business dates, or conf `{"from": …, "to": …}` (补数据).'
            "\n\nGenerated from the contracts (`pipelines/orchestration.py`)."
        ),
    ) as dag:

        @task(task_id="dwd", multiple_outputs=False)
        def dwd(params: Json | None = None, dag_run: Any = None, **context: Any) -> Json:
            from citylake.spark import start_in_background

            start_in_background()  # the JVM (or Spark Connect client) while the pipelines import
            from pipelines.runs import domain_dwd

            start, end = days_of(params or {}, context.get("triggering_asset_events"), dag_run)
            with fail_without_retry():
                return domain_dwd(domain, start, end)

        @task(task_id="dws_ads", multiple_outputs=False)
        def dws_ads(state: Json) -> Json:
            from citylake.spark import start_in_background

            start_in_background()  # the JVM (or Spark Connect client) while the pipelines import
            from pipelines.runs import domain_dws_ads

            with fail_without_retry():
                return domain_dws_ads(state)

        dws_ads(dwd())
    return dag


def upkeep_dag(dag_id: str, cron: str, tag: str, doc_md: str, defaults: Json) -> DAG:
    """A DAG of the platform's own upkeep on a cron in Beijing time: one run at a time, no
    catch-up of missed periods (a later run does the work of the ones it skipped)."""
    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable(cron, timezone=TIMEZONE),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=defaults,
        tags=["citylake", tag],
        doc_md=doc_md,
    )


ACCESS_RULES_DAG = "citylake_access_rules"


def access_rules_dag(settings: Settings, defaults: Json) -> DAG:
    """Trino's access rules regenerated from the grants in force on a schedule, so an expired
    grant closes in SQL without anyone running `citylake access` (catalog/trino_rules.py)."""
    with upkeep_dag(
        ACCESS_RULES_DAG,
        settings.access.rules_schedule,
        "access",
        (
            "### Trino access rules from the grants in force\n\n"
            "Rewrites the file-based access rules Trino rereads every "
            f"{settings.access.trino_refresh_seconds} s: departments keep exactly the ADS "
            "tables of their active grants; an expired grant drops out at this run."
        ),
        defaults,
    ) as dag:

        @task(task_id="write_rules")
        def write_rules() -> str:
            from catalog.trino_rules import write_rules

            return str(write_rules())

        write_rules()
    return dag


MAINTENANCE_DAG = "citylake_maintenance"


def maintenance_dag(settings: Settings, defaults: Json) -> DAG:
    """The warehouse's upkeep: compaction of the small files that row-level fact writes leave
    (pipelines/maintenance.py), in the Spark pool's one slot so no build writes meanwhile."""
    with upkeep_dag(
        MAINTENANCE_DAG,
        settings.airflow.compact_schedule,
        "maintenance",
        (
            "### Compaction of the DWD, DWS and ADS partitions\n\n"
            "Each partition's small files (a late refund's appended row, for one) are rewritten "
            "into fewer; no row changes and time travel still reads every old version. ODS and "
            "the tables the quality scorecard pins are left alone: their versions are recorded."
        ),
        defaults,
    ) as dag:

        @task(task_id="compact", pool=SPARK_POOL)
        def compact() -> list[dict[str, Any]]:
            from dataclasses import asdict

            from pipelines.maintenance import compact

            return [asdict(c) for c in compact()]

        compact()
    return dag


def generate(contracts_dir: Path | None = None) -> dict[str, DAG]:
    """Every DAG the contracts under `contracts_dir` (default: the settings') describe."""
    settings = get_settings()
    contracts = load_contracts(contracts_dir or settings.contracts_dir)
    defaults = task_defaults(settings)
    feeds = [t for t in contracts.values() if t.feed is not None]
    dags = [feed_dag(t, defaults) for t in feeds]
    for domain in sorted({t.domain for t in feeds}):
        inputs = domain_inputs(domain, contracts)
        if inputs:  # a domain whose feeds no DWD table reads yet has no layers to build
            dags.append(layer_dag(domain, inputs, defaults))
    dags.append(access_rules_dag(settings, defaults))
    dags.append(maintenance_dag(settings, defaults))
    return {d.dag_id: d for d in dags}
