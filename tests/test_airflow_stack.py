"""Real Airflow under `citylake up`: feed DAGs triggered through the REST API (JWT) take a
city-day in, their ODS Assets trigger the payment layer DAG, which builds the day to ADS under
the real scheduler with every Spark task on the stack's Spark Connect server; a pull that
fails once succeeds on its retry; a backfill run of three days equals their single-day runs;
`citylake down` leaves no process behind.

Everything runs from the test's own ./var on free loopback ports: the project's PostgreSQL
(payment source database and Airflow's metadata database), the Spark Connect server,
api-server, scheduler and dag-processor. Airflow's tasks inherit the test's CITYLAKE_*
environment, and the Connect server's URL from `citylake.orchestrator.environment`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pyarrow.compute as pc
import pytest

from citylake import orchestrator, processes, stack
from citylake.processes import service
from citylake.settings import Settings, get_settings
from tests.ads_tables import ads_rows
from tests.sockets import LOOPBACK, listening
from tests.source_db import alive, free_port

pytestmark = pytest.mark.stack

CITY = ZoneInfo("Asia/Shanghai")


def latest_period() -> dt.datetime:
    """The logical date of a daily feed DAG's latest complete period (02:00 Beijing to 02:00):
    unpausing the DAG schedules exactly this run, so the test triggers it itself first, and
    the scheduler then finds it there instead of pulling the same rows under another date."""
    now = dt.datetime.now(CITY)
    end = now.replace(hour=2, minute=0, second=0, microsecond=0)
    if end > now:
        end -= dt.timedelta(days=1)
    return (end - dt.timedelta(days=1)).astimezone(dt.UTC)


LOGICAL = latest_period()
DAY = LOGICAL.astimezone(CITY).date()  # the business date the feed DAGs take in
SERVICES = [
    "postgres",
    "spark-connect",
    *(s.name for s in stack.SERVICES if s.name.startswith("airflow-")),
]
FEEDS = ("merchant_registry", "pay_transactions", "pay_settlements")  # the payment layer's inputs
LAYERS = "citylake_layers_payment"


def own_root() -> tuple[Path, dict[str, str]]:
    """A temporary root and the CITYLAKE_* environment that puts the stack in it, on free
    loopback ports (benchmarks/airflow_day.py runs its stack the same way)."""
    # PostgreSQL runs as the postgres account: its ./var must be in a directory that account
    # can enter (pytest's tmp_path is private to us).
    root = Path(tempfile.mkdtemp(prefix="citylake-airflow-"))
    root.chmod(0o711)
    return root, {
        "CITYLAKE_VAR_DIR": str(root / "var"),
        "CITYLAKE_WAREHOUSE": str(root / "lakehouse"),
        "CITYLAKE_LANDING": str(root / "landing"),
        "CITYLAKE_SOURCE_DB__PORT": str(free_port()),
        "CITYLAKE_AIRFLOW__PORT": str(free_port()),
        "CITYLAKE_SPARK__CONNECT_PORT": str(free_port()),
        # The models fill every day since models_start: a month before the day is plenty here.
        "CITYLAKE_MODELS_START": (DAY - dt.timedelta(days=31)).isoformat(),
    }


@contextlib.contextmanager
def running(services: list[str], settings: Settings) -> Iterator[None]:
    """Start `services` one by one (a failed start still stops the others); on the way out
    `citylake down` them and fail if a process of theirs is left."""
    started: dict[str, int] = {}
    try:
        for s in stack.select(services):
            pid = s.start(settings).pid
            assert pid is not None
            started[s.name] = pid
        yield
    finally:
        before = {pid for leader in started.values() for pid in processes.session(leader)}
        stopped = stack.down(services, settings)
        time.sleep(1)
        left = [pid for pid in before | set(started.values()) if alive(pid)]
        assert set(started) <= set(stopped), f"started {list(started)}, stopped {stopped}"
        assert not left, f"processes left after citylake down: {left}"


@pytest.fixture(scope="module")
def airflow_up() -> Iterator[Settings]:
    """The stack, once for the module's tests: they build different days of one warehouse."""
    root, env = own_root()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():  # Airflow's processes and their tasks inherit these
            patch.setenv(name, value)
        patch.setenv("CITYLAKE_AIRFLOW__RETRY_DELAY_SECONDS", "5")  # the retry test's wait
        get_settings.cache_clear()
        settings = get_settings()
        try:
            with running(SERVICES, settings):
                yield settings
        finally:
            get_settings.cache_clear()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def api(airflow_up: Settings) -> Iterator[httpx.Client]:
    """Airflow's REST API with a JWT, once the dag-processor has parsed the DAGs."""
    af = airflow_up.airflow
    assert httpx.get(f"{af.url}/api/v2/dags", timeout=10).status_code == 401  # JWT required
    client = httpx.Client(
        base_url=f"{af.url}/api/v2",
        headers={"Authorization": f"Bearer {orchestrator.token(airflow_up)}"},
        timeout=30,
    )
    deadline = time.monotonic() + 120  # the dag-processor's first parse
    wanted = {f"citylake_feed_{f}" for f in FEEDS} | {LAYERS}
    while wanted - {d["dag_id"] for d in client.get("/dags", params={"limit": 100}).json()["dags"]}:
        assert time.monotonic() < deadline, "the generated DAGs did not appear"
        time.sleep(2)
    client.patch(f"/dags/{LAYERS}", json={"is_paused": False}).raise_for_status()
    try:
        yield client
    finally:
        client.close()


def dag_runs(api: httpx.Client, dag_id: str) -> list[dict]:
    return api.get(f"/dags/{dag_id}/dagRuns").json()["dag_runs"]


def deliver(settings: Settings, day: dt.date = DAY) -> None:
    """One small city-day: the payment database gets its rows, the registry lands as a file."""
    from citylake.postgres import connect_source_db
    from pipelines.generator import write_day
    from pipelines.generator.cityday import generate_city_day
    from sources.payment_db import load_settlements, load_transactions

    city_day = generate_city_day(day, scale=0.005)
    with connect_source_db(settings) as conn:
        load_transactions(conn, city_day.rows("pay_transactions"))
        load_settlements(conn, city_day.rows("pay_settlements"))
    write_day(Path(settings.landing), city_day, ("merchant_registry",))


@pytest.mark.timeout(1500)
def test_feed_dags_trigger_the_layer_dag_under_the_real_scheduler(
    airflow_up: Settings, api: httpx.Client
) -> None:
    """…and a pull that fails once (its source table is away) succeeds on its retry."""
    from citylake.postgres import connect_source_db

    settings = airflow_up
    for name in SERVICES[1:]:
        pid = service(name, settings).pid
        assert pid is not None and alive(pid), name
        assert {a for a, _ in listening(pid)} <= LOOPBACK, name  # loopback only
    deliver(settings)

    def runs(dag_id: str) -> list[dict]:
        return dag_runs(api, dag_id)

    def trigger(feed: str) -> None:
        response = api.post(
            f"/dags/citylake_feed_{feed}/dagRuns",
            json={"logical_date": LOGICAL.isoformat(), "dag_run_id": f"stack-{feed}"},
        )
        assert response.status_code in (200, 201), response.text
        # Unpaused after its run exists: the scheduler then finds its latest period taken.
        api.patch(f"/dags/citylake_feed_{feed}", json={"is_paused": False}).raise_for_status()

    # A task that started Spark of its own would show as a JVM among the scheduler's processes
    # (its tasks live in its session); with Connect the only JVM is the server's.
    scheduler = service("airflow-scheduler", settings).pid
    assert scheduler is not None

    def task_jvms() -> set[int]:
        jvms = set()
        for pid in processes.session(scheduler):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "java":
                    jvms.add(pid)
        return jvms

    triggered = time.monotonic()
    # The registry first: on a fresh warehouse its run creates the shared delivery log and
    # quarantine tables, which concurrent first runs would race to create (and then retry).
    trigger("merchant_registry")
    deadline = time.monotonic() + 300
    while [r["state"] for r in runs("citylake_feed_merchant_registry")] != ["success"]:
        assert "failed" not in str(runs("citylake_feed_merchant_registry")), "registry failed"
        assert not task_jvms(), "a task started a Spark JVM instead of using Spark Connect"
        assert time.monotonic() < deadline, "the registry's feed run did not finish"
        time.sleep(2)

    # The settlements' source table is away (a maintenance window): the pull fails, not for
    # its data, so Airflow retries it; the table is back before the retry.
    with connect_source_db(settings, autocommit=True) as conn:
        conn.execute("ALTER TABLE pay_settlements RENAME TO pay_settlements_away")
    pull = "/dags/citylake_feed_pay_settlements/dagRuns/stack-pay_settlements/taskInstances/pull"
    trigger("pay_settlements")
    deadline = time.monotonic() + 300
    while api.get(pull).json().get("state") != "up_for_retry":
        assert api.get(pull).json().get("state") not in ("failed", "success"), api.get(pull).text
        assert time.monotonic() < deadline, "the pull did not fail with its table away"
        time.sleep(1)
    with connect_source_db(settings, autocommit=True) as conn:
        conn.execute("ALTER TABLE pay_settlements_away RENAME TO pay_settlements")
    trigger("pay_transactions")

    deadline = time.monotonic() + 900
    while True:
        assert not task_jvms(), "a task started a Spark JVM instead of using Spark Connect"
        layer = runs(LAYERS)
        if layer and layer[0]["state"] in ("success", "failed"):
            break
        failed = [
            f for f in FEEDS if any(r["state"] == "failed" for r in runs(f"citylake_feed_{f}"))
        ]
        assert not failed, f"feed DAG runs failed: {failed}"
        assert time.monotonic() < deadline, f"no finished layer run: {layer}"
        time.sleep(3)
    seconds = time.monotonic() - triggered
    assert [r["state"] for r in layer] == ["success"], layer
    assert layer[0]["run_type"] == "asset_triggered"
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"trigger-to-ADS under the real scheduler, Spark Connect: {seconds:.0f} s (load {load})")
    assert service("spark-connect", settings).running
    for feed in FEEDS:
        assert [r["state"] for r in runs(f"citylake_feed_{feed}")] == ["success"], feed
    tries = api.get(f"{pull}/tries").json()["task_instances"]
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]

    from pipelines import tables

    ads = tables.read_native(
        tables.contract("ads_trade_daily", settings), pc.field("biz_date") == DAY, settings
    )
    assert ads.num_rows > 0
    assert os.environ["CITYLAKE_WAREHOUSE"] in tables.table_path(
        tables.contract("ads_trade_daily", settings), settings
    )


@pytest.mark.timeout(1500)
def test_a_backfill_run_equals_the_single_day_runs_under_the_real_scheduler(
    airflow_up: Settings, api: httpx.Client
) -> None:
    """补数据 under the scheduler: three days, each delivered and then built by a layer run of
    its own, give the same ADS rows as one backfill run of the three days (conf from/to) over
    the same deliveries. The third day is the one the feed DAGs took in above (its run was
    Asset-triggered); the two days before it are delivered now, each then built by a run with
    conf. (tests/test_backfill.py shows the same with two warehouses, outside Airflow.)"""
    from pipelines import runs

    settings = airflow_up
    built = [r for r in dag_runs(api, LAYERS) if r["run_type"] == "asset_triggered"]
    assert [r["state"] for r in built] == ["success"], "needs the feed test's day, built"
    days = [DAY - dt.timedelta(days=n) for n in (2, 1)]

    def build(run_id: str, start: dt.date, end: dt.date) -> None:
        conf = {"from": start.isoformat(), "to": end.isoformat()}
        response = api.post(
            f"/dags/{LAYERS}/dagRuns",
            json={"logical_date": None, "dag_run_id": run_id, "conf": conf},
        )
        assert response.status_code in (200, 201), response.text
        deadline = time.monotonic() + 600
        while (state := api.get(f"/dags/{LAYERS}/dagRuns/{run_id}").json()["state"]) not in (
            "success",
            "failed",
        ):
            assert time.monotonic() < deadline, f"{run_id} did not finish"
            time.sleep(3)
        assert state == "success", run_id

    for day in days:  # as the scheduler would: each day delivered, then its run
        deliver(settings, day)
        time.sleep(settings.source_db.watermark_lag_seconds)  # a pull takes rows this old
        runs.ingest_day("merchant_registry", day, settings=settings)
        for feed in ("pay_transactions", "pay_settlements"):
            runs.pull_day(feed, day, settings=settings)
        build(f"day-{day}", day, day)
    day_by_day = ads_rows(settings)

    build("backfill", days[0], DAY)
    in_one_go = ads_rows(settings)

    assert in_one_go == day_by_day
    trade = {r[0] for r in in_one_go["ads_trade_daily"]}
    assert {str(d) for d in [*days, DAY]} <= trade, sorted(trade)  # not vacuous: all booked
