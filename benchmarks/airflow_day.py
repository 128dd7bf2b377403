"""Trigger-to-ADS wall time of one whole city-day under the real Airflow scheduler.

    .venv/bin/python benchmarks/airflow_day.py [--scale 1.0] [--timeout-minutes 60]

One city-day (`generate_city_day`, all eleven feeds) is delivered through every channel as
`pipelines/demo.py` delivers it: the payment database gets its rows, the exchange its
publications, the landing zone its files. Then every feed DAG `citylake_feed_<feed>` is
triggered through the REST API (JWT) for the day, the merchant registry first (on a fresh
warehouse its run creates the shared delivery log and quarantine tables); their ODS Assets
trigger the layer DAGs `citylake_layers_<domain>` (unpaused before), whose Spark runs on the
stack's Spark Connect server. It waits until every feed run succeeded and every layer run
finished with no Asset events left queued: the government DAG may run twice (its daily input
alone, or any monthly one, triggers it). The run Airflow adds itself when an hourly or monthly
feed DAG is unpaused (its latest period, not the day) is failed and deleted before it takes
anything in. Printed: rows delivered per feed, the time to deliver, each feed run's duration,
each layer run's start and end after the first trigger with its `dwd` and `dws_ads` task
durations, and the headline: first trigger to the last layer run's end.

Starts, as `tests/test_airflow_stack.py`'s fixture does, from a temporary root of its own
(var, warehouse, landing; free loopback ports): PostgreSQL (payment source database and
Airflow's metadata), the gov exchange, the Spark Connect server, Airflow's api-server,
scheduler and dag-processor. Stops them by pid in any case, fails if a process of theirs is
left, and removes the root.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from citylake import orchestrator
from citylake.settings import Settings, get_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the stack test's helpers

RUN_ID = "bench"
REGISTRY = "citylake_feed_merchant_registry"
FINISHED = ("success", "failed")


def deliver(settings: Settings, day: dt.date, scale: float) -> None:
    """The sources deliver one city-day through their channels (nothing is ingested here)."""
    from citylake.postgres import connect_source_db
    from pipelines import tables
    from pipelines.generator import FEEDS, write_day
    from pipelines.generator.cityday import generate_city_day
    from sources.gov_exchange import exchange_feeds, publish
    from sources.payment_db import load_settlements, load_transactions

    began = time.monotonic()
    city_day = generate_city_day(day, scale=scale)
    generated = time.monotonic()
    with connect_source_db(settings) as conn:
        db = {
            "pay_transactions": load_transactions(conn, city_day.rows("pay_transactions")),
            "pay_settlements": load_settlements(conn, city_day.rows("pay_settlements")),
        }
    rows = {feed: r.inserted + r.updated for feed, r in db.items()}
    rows |= {f: len(publish(f, city_day.rows(f), settings)) for f in exchange_feeds(settings)}
    rows |= {f: len(city_day.lines(f)) for f in write_day(Path(settings.landing), city_day)}
    print(f"city-day {day}, scale {scale}: rows delivered per feed")
    for feed in FEEDS:
        channel = tables.feed_contract(feed, settings).feed.channel  # type: ignore[union-attr]
        print(f"  {feed:<24} {channel:<9} {rows[feed]:>11,}")
    print(f"  {'total':<34} {sum(rows.values()):>11,}")
    print(
        f"generated in {generated - began:.1f} s, delivered in {time.monotonic() - generated:.1f} s"
    )


def when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def seconds(start: str | None, end: str | None) -> str:
    a, b = when(start), when(end)
    return f"{(b - a).total_seconds():7.1f} s" if a and b else "      —  "


def log_tail(settings: Settings, dag_id: str, run_id: str, task_id: str, lines: int = 25) -> None:
    """The last lines of the task's last attempt, from Airflow's log folder (var/airflow/logs)."""
    folder = orchestrator.home(settings) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    attempts = sorted((folder / f"task_id={task_id}").glob("attempt=*.log"))
    if not attempts:
        print(f"    (no log under {folder})")
        return
    print(f"    {attempts[-1]}:")
    for line in attempts[-1].read_text(errors="replace").splitlines()[-lines:]:
        try:
            record = json.loads(line)
        except ValueError:
            print(f"    {line[:300]}")
            continue
        error = record.get("error_detail") or []
        cause = f" [{error[-1].get('exc_type')}: {error[-1].get('exc_value')}]" if error else ""
        print(f"    {record.get('level', '')} {record.get('event', '')}{cause}"[:400])


def benchmark(settings: Settings, scale: float, timeout: float) -> None:
    import pyarrow.compute as pc

    from pipelines import tables
    from pipelines.generator import FEEDS
    from tests.test_airflow_stack import DAY, LOGICAL  # a daily feed DAG's latest period

    deliver(settings, DAY, scale)
    af = settings.airflow
    api = httpx.Client(
        base_url=f"{af.url}/api/v2",
        headers={"Authorization": f"Bearer {orchestrator.token(settings)}"},
        timeout=60,
    )
    feed_dags = [f"citylake_feed_{f}" for f in FEEDS]
    deadline = time.monotonic() + 300  # the dag-processor's first parse
    while not set(feed_dags) <= (
        dags := {d["dag_id"] for d in api.get("/dags", params={"limit": 100}).json()["dags"]}
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"the generated DAGs did not appear: {sorted(dags)}")
        time.sleep(2)
    layer_dags = sorted(d for d in dags if d.startswith("citylake_layers_"))
    print(f"{len(feed_dags)} feed DAGs; layer DAGs {', '.join(layer_dags)}")

    def pause(dag_id: str, paused: bool) -> None:
        api.patch(f"/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()

    def trigger(dag_id: str) -> None:
        # run_after before the period Airflow schedules itself when the DAG is unpaused (an
        # hourly DAG's last hour, a monthly one's last month): of the two, ours starts first.
        body = {
            "logical_date": LOGICAL.isoformat(),
            "dag_run_id": RUN_ID,
            "run_after": (LOGICAL - dt.timedelta(days=40)).isoformat(),
        }
        response = api.post(f"/dags/{dag_id}/dagRuns", json=body)
        if response.status_code not in (200, 201):
            raise SystemExit(f"trigger {dag_id}: {response.status_code} {response.text}")
        pause(dag_id, False)  # after its run exists: a daily DAG finds its latest period taken

    seen: dict[tuple[str, str], str] = {}

    def poll() -> dict[str, list[dict[str, Any]]]:
        """Every run by DAG (a feed DAG: ours only), state changes printed. The run a feed DAG
        gets from the scheduler on unpause (hourly, monthly: another period than ours) is
        failed and deleted before it takes the feed in under its own business date and emits
        its Asset; a feed DAG is paused again once our run finished."""
        body = {"dag_ids": feed_dags + layer_dags, "page_limit": 100}
        response = api.post("/dags/~/dagRuns/list", json=body)
        response.raise_for_status()
        found: dict[str, list[dict[str, Any]]] = {d: [] for d in feed_dags + layer_dags}
        for run in response.json()["dag_runs"]:
            found[run["dag_id"]].append(run)
            key = (run["dag_id"], run["dag_run_id"])
            if seen.get(key) != run["state"]:
                seen[key] = run["state"]
                after = (dt.datetime.now(dt.UTC) - first).total_seconds()
                print(f"  +{after:5.0f} s {key[0]} {key[1]}: {run['state']}", flush=True)
        for dag_id in feed_dags:
            for run in found[dag_id]:
                path = f"/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}"
                if run["dag_run_id"] != RUN_ID:  # failed first: a running run is not deleted
                    api.patch(path, json={"state": "failed"})
                    deleted = api.delete(path).status_code
                    print(
                        f"  deleted the scheduler's run {run['dag_run_id']} of {dag_id}: {deleted}"
                    )
                elif run["state"] in FINISHED and not paused.get(dag_id):
                    pause(dag_id, True)
                    paused[dag_id] = True
            found[dag_id] = [r for r in found[dag_id] if r["dag_run_id"] == RUN_ID]
        return found

    def finished(found: dict[str, list[dict[str, Any]]]) -> bool:
        """A feed run failed, or every feed run succeeded and every layer DAG has run, none
        runs and none has Asset events queued (the next run of a layer DAG that had one)."""
        if any(r["state"] == "failed" for d in feed_dags for r in found[d]):
            return True
        if not all(found[d] and found[d][0]["state"] == "success" for d in feed_dags):
            return False
        if not all(
            found[d] and {r["state"] for r in found[d]} <= set(FINISHED) for d in layer_dags
        ):
            return False
        return not any(
            api.get(f"/dags/{d}/assets/queuedEvents").json().get("queued_events")
            for d in layer_dags
        )

    paused: dict[str, bool] = {}
    for dag_id in layer_dags:
        pause(dag_id, False)
    first = dt.datetime.now(dt.UTC)
    deadline = time.monotonic() + timeout
    # The registry first: on a fresh warehouse its run creates the shared delivery log and
    # quarantine tables, which concurrent first runs would race to create.
    trigger(REGISTRY)
    while (found := poll())[REGISTRY][0]["state"] not in FINISHED:
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    if found[REGISTRY][0]["state"] == "success":
        for dag_id in feed_dags:
            if dag_id != REGISTRY:
                trigger(dag_id)
        while not finished(found := poll()):
            if time.monotonic() > deadline:
                print("timed out")
                break
            time.sleep(2)

    def offset(value: str | None) -> str:
        at = when(value)
        return f"{(at - first).total_seconds():6.0f} s" if at else "     —  "

    def tasks(dag_id: str, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances"
        return {ti["task_id"]: ti for ti in api.get(path).json()["task_instances"]}

    def durations(task: dict[str, dict[str, Any]], names: tuple[str, ...]) -> str:
        return "  ".join(f"{n} {task.get(n, {}).get('duration') or 0:6.1f} s" for n in names)

    print("\nfeed DAG runs: start after the first trigger; run, its tasks")
    for dag_id in feed_dags:
        for run in found[dag_id]:
            task = tasks(dag_id, run)
            take = "ingest" if "ingest" in task else "pull"
            print(
                f"  {dag_id:<38} {run['state']:<8} {offset(run['start_date'])}  run "
                f"{seconds(run['start_date'], run['end_date'])}  "
                f"{durations(task, (take, 'gate_ods'))}"
            )
    if all(found[d] and found[d][0]["end_date"] for d in feed_dags):
        last = max(dt.datetime.fromisoformat(found[d][0]["end_date"]) for d in feed_dags)
        print(f"  every feed in ODS {(last - first).total_seconds():.0f} s after the first trigger")
    print("\nlayer DAG runs: start and end after the first trigger; run, dwd, dws_ads")
    failed = [d for d in feed_dags + layer_dags if not found[d]]
    for dag_id in layer_dags:
        for run in found[dag_id]:
            path = f"/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}"
            events = api.get(f"{path}/upstreamAssetEvents").json()["asset_events"]
            days = sorted({(e.get("extra") or {}).get("business_date", "?") for e in events})
            print(
                f"  {dag_id:<26} {run['state']:<8} {offset(run['start_date'])} "
                f"{offset(run['end_date'])}  run {seconds(run['start_date'], run['end_date'])}"
                f"  {durations(tasks(dag_id, run), ('dwd', 'dws_ads'))}"
                f"  ({len(events)} Asset events of {', '.join(days)})"
            )
    ends = [
        dt.datetime.fromisoformat(r["end_date"])
        for d in layer_dags
        for r in found[d]
        if r["end_date"]
    ]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    if ends:
        total = (max(ends) - first).total_seconds()
        print(
            f"\ntrigger-to-ADS, one city-day at scale {scale}: {total:.0f} s (load average {load})"
        )

    failed += [d for d in feed_dags + layer_dags if any(r["state"] != "success" for r in found[d])]
    if failed:
        for dag_id in failed:
            for run in found[dag_id]:
                for ti in tasks(dag_id, run).values():
                    if ti["state"] not in ("success", None):
                        print(f"\n  {dag_id} {run['dag_run_id']} {ti['task_id']}: {ti['state']}")
                        log_tail(settings, dag_id, run["dag_run_id"], ti["task_id"])
        raise SystemExit(f"DAGs without a successful run: {sorted(set(failed))}")
    ads = tables.contract("ads_trade_daily", settings)
    rows = tables.read_native(ads, pc.field("biz_date") == DAY, settings).num_rows
    print(f"ads_trade_daily rows for {DAY}: {rows:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--timeout-minutes", type=float, default=60.0)
    args = parser.parse_args()

    from tests.source_db import free_port
    from tests.test_airflow_stack import SERVICES, own_root, running

    services = [*SERVICES, "gov-exchange"]  # the stack test's, and the exchange
    root, env = own_root()
    env["CITYLAKE_EXCHANGE__URL"] = f"http://127.0.0.1:{free_port()}"
    os.environ.update(env)  # Airflow's processes and their tasks inherit these
    get_settings.cache_clear()
    settings = get_settings()
    try:
        began = time.monotonic()
        with running(services, settings):
            print(f"started {', '.join(services)} in {time.monotonic() - began:.0f} s under {root}")
            benchmark(settings, args.scale, args.timeout_minutes * 60)
        print(f"stopped {', '.join(services)}; no process left")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
