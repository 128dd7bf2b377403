"""The Airflow DAGs: they parse fast and cleanly, and the payment DAG runs end to end."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pipelines.build import PAYMENT_INPUTS
from tests import airflow_home

# Airflow reads its configuration on first import: the isolated home must be set up first.
airflow_home.configure()
# Airflow's logging writes to the stream pytest captured; py4j's INFO line at interpreter exit
# would then hit a closed file ("--- Logging error ---").
logging.getLogger("py4j").setLevel(logging.WARNING)

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from pyspark.sql import SparkSession

    from citylake.settings import Settings

FEEDS = {  # feed -> (channel, schedule) as the contracts say
    "merchant_registry": ("landing", "@daily"),
    "merchant_orders": ("landing", "@daily"),
    "fuel_stations": ("landing", "@daily"),
    "fuel_sales": ("landing", "@daily"),
    "fuel_deliveries": ("landing", "@daily"),
    "fuel_tank_readings": ("landing", "@hourly"),
    "pay_transactions": ("database", "@daily"),
    "pay_settlements": ("database", "@daily"),
    "gov_enterprise_registry": ("exchange", "@daily"),
    "gov_tax_monthly": ("exchange", "@monthly"),
    "gov_social_insurance": ("exchange", "@monthly"),
}
CRONS = {"@hourly": "5 * * * *", "@daily": "0 2 * * *", "@monthly": "0 2 1 * *"}
LAYERS = {  # domain -> the ODS Assets that trigger its layer DAG (all of / any of)
    "payment": ("all", {"ods_merchant_registry", "ods_pay_transactions", "ods_pay_settlements"}),
    "merchant": ("all", {"ods_merchant_registry", "ods_merchant_orders"}),
    "fuel": (
        "all",
        {"ods_fuel_stations", "ods_fuel_sales", "ods_fuel_deliveries", "ods_fuel_tank_readings"},
    ),
    # the daily registry, or either monthly feed
    "government": (
        "any",
        {"ods_gov_enterprise_registry", "ods_gov_tax_monthly", "ods_gov_social_insurance"},
    ),
}
PAYMENT = "citylake_layers_payment"
DAY = dt.date(2024, 11, 5)


def parse_dags() -> DagBag:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=airflow_home.DAGS_FOLDER)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    from airflow.dag_processing.dagbag import DagBag  # noqa: F401 - Airflow itself loads first

    started = time.perf_counter()
    bag = parse_dags()
    bag.parse_seconds = time.perf_counter() - started
    return bag


@pytest.fixture(scope="module")
def airflow_db() -> Iterator[Path]:
    """The metadata DB of the temporary Airflow home, created once."""
    airflow_home.migrate()
    yield Path(airflow_home.configure())


def edges(dag: Any) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def asset_names(condition: Any) -> set[str]:
    return {a.name for a in condition.objects}


@pytest.mark.airflow
def test_dag_folder_imports_cleanly_and_fast(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    expected = {f"citylake_feed_{f}" for f in FEEDS} | {f"citylake_layers_{d}" for d in LAYERS}
    assert set(dagbag.dags) == expected | {"citylake_access_rules", "citylake_maintenance"}
    # Parsing must not load Spark or the pipelines (imports happen inside the tasks).
    assert dagbag.parse_seconds < 2, f"parsing dags/ took {dagbag.parse_seconds:.1f} s"
    assert len(list(airflow_home.DAGS_FOLDER.glob("*.py"))) == 1  # one thin generator file


@pytest.mark.airflow
def test_feed_dags_follow_their_contracts(dagbag: DagBag) -> None:
    from airflow.timetables.interval import CronDataIntervalTimetable

    for feed, (channel, schedule) in FEEDS.items():
        dag = dagbag.dags[f"citylake_feed_{feed}"]
        take = "ingest" if channel == "landing" else "pull"
        assert edges(dag) == {(take, "gate_ods")}, feed
        assert isinstance(dag.timetable, CronDataIntervalTimetable), feed
        assert dag.timetable._expression == CRONS[schedule], feed
        assert str(dag.timetable._timezone) == "Asia/Shanghai", feed
        [outlet] = dag.task_dict["gate_ods"].outlets
        assert outlet.name == f"ods_{feed}", feed
        assert dag.catchup is False and dag.max_active_runs == 1, feed
        assert {"citylake", "feed", channel} <= set(dag.tags), feed


@pytest.mark.airflow
def test_layer_dags_are_triggered_by_their_ods_assets(dagbag: DagBag) -> None:
    from airflow.sdk.definitions.asset import AssetAll, AssetAny

    for domain, (how, assets) in LAYERS.items():
        dag = dagbag.dags[f"citylake_layers_{domain}"]
        assert edges(dag) == {("dwd", "dws_ads")}, domain
        condition = dag.timetable.asset_condition
        assert isinstance(condition, AssetAll if how == "all" else AssetAny), domain
        assert asset_names(condition) == assets, domain
        assert all(t.pool == "citylake_spark" for t in dag.tasks), domain
    # Every Asset a layer DAG waits for is emitted by some feed DAG's ODS gate.
    emitted = {
        o.name for d in dagbag.dags.values() for t in d.tasks for o in getattr(t, "outlets", [])
    }
    assert set().union(*(a for _, a in LAYERS.values())) <= emitted


@pytest.mark.airflow
def test_retries_back_off_and_failures_alert(
    dagbag: DagBag, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quality import alerts

    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert t.retries == 2, t.task_id
            assert t.retry_delay == dt.timedelta(minutes=1), t.task_id
            assert t.retry_exponential_backoff == 2.0, t.task_id
            assert t.max_retry_delay == dt.timedelta(minutes=10), t.task_id
            assert not t.multiple_outputs, t.task_id  # one JSON value per task
    task = dagbag.dags[PAYMENT].task_dict["dwd"]
    [callback] = task.on_failure_callback
    sent: list[alerts.Alert] = []
    monkeypatch.setattr(alerts, "notify", lambda alert, settings=None: sent.append(alert) or {})
    ti = type("TI", (), {"dag_id": PAYMENT, "task_id": "dwd", "run_id": "r1", "try_number": 3})
    callback({"ti": ti, "exception": OSError("disk full")})
    [alert] = sent
    assert alert.title.startswith("【任务失败】citylake_layers_payment.dwd")
    assert "disk full" in alert.body and alert.severity == "error"


@pytest.mark.airflow
def test_a_new_feed_contract_is_a_new_dag(tmp_path: Path) -> None:
    """Adding a feed = adding its contract: no Python written, a DAG appears (and joins its
    domain's layer DAG once a DWD contract names it upstream)."""
    import shutil

    from pipelines.orchestration import generate

    contracts = tmp_path / "warehouse_layers"
    shutil.copytree(airflow_home.PROJECT_ROOT / "warehouse_layers", contracts)
    sales = (contracts / "ods" / "ods_fuel_sales.yaml").read_text()
    (contracts / "ods" / "ods_fuel_prices.yaml").write_text(
        sales.replace("ods_fuel_sales", "ods_fuel_prices")
        .replace("name: fuel_sales", "name: fuel_prices")
        .replace('schedule: "@daily"', 'schedule: "@hourly"')
    )
    before = set(generate(airflow_home.PROJECT_ROOT / "warehouse_layers"))
    dags = generate(contracts)
    assert set(dags) - before == {"citylake_feed_fuel_prices"}
    dag = dags["citylake_feed_fuel_prices"]
    assert edges(dag) == {("ingest", "gate_ods")}
    assert dag.timetable._expression == "5 * * * *"
    assert [o.name for o in dag.task_dict["gate_ods"].outlets] == ["ods_fuel_prices"]
    # A DWD table that names it upstream puts it into the fuel layer DAG's schedule.
    sale = contracts / "dwd" / "dwd_fuel_sale.yaml"
    sale.write_text(
        sale.read_text().replace(
            "upstream: [ods_fuel_sales, dwd_fuel_station]",
            "upstream: [ods_fuel_sales, dwd_fuel_station, ods_fuel_prices]",
        )
    )
    generate.__globals__["load_contracts"].cache_clear()
    fuel = generate(contracts)["citylake_layers_fuel"]
    assert "ods_fuel_prices" in asset_names(fuel.timetable.asset_condition)


@pytest.mark.airflow
def test_data_problems_fail_without_retry(dagbag: DagBag, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines import runs
    from quality.gate import CheckResult, GateBlocked, GateResult

    calls: list[tuple] = []

    def lost_lines(feed: str, day: str) -> list[dict]:
        calls.append((feed, day))
        raise runs.DeliveryNotReconciled("delivered 3 != loaded 1 + quarantined 1")

    def blocked(domain: str, start: str, end: str) -> dict:
        check = CheckResult("not_null(merchant_id)", "block", False, 2, 50.0, [])
        raise GateBlocked(GateResult("dwd→dws", "dwd_merchant", 4, [check]))

    def held(state: dict) -> dict:  # the rest promoted, then the run fails on the block
        raise runs.LayersHeld("gate ods→dwd BLOCKED on table ods_pay_transactions")

    def broken(state: dict) -> dict:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "ingest_day", lost_lines)
    monkeypatch.setattr(runs, "pull_day", lost_lines)
    monkeypatch.setattr(runs, "domain_dwd", blocked)
    monkeypatch.setattr(runs, "domain_dws_ads", held)
    feed = dagbag.dags["citylake_feed_merchant_registry"].task_dict["ingest"]
    with pytest.raises(AirflowFailException, match="delivered 3"):
        feed.python_callable(logical_date=dt.datetime(2024, 11, 4, 18, tzinfo=dt.UTC))
    pull = dagbag.dags["citylake_feed_pay_transactions"].task_dict["pull"]
    with pytest.raises(AirflowFailException, match="delivered 3"):
        pull.python_callable(logical_date=dt.datetime(2024, 11, 5, 1, tzinfo=dt.UTC))
    assert calls == [("merchant_registry", "2024-11-05"), ("pay_transactions", "2024-11-05")]
    tasks = dagbag.dags[PAYMENT].task_dict
    with pytest.raises(AirflowFailException, match="BLOCKED on table dwd_merchant"):
        tasks["dwd"].python_callable(params={"from": "2024-11-05", "to": "2024-11-05"})
    with pytest.raises(AirflowFailException, match="BLOCKED on table ods_pay_transactions"):
        tasks["dws_ads"].python_callable({})
    monkeypatch.setattr(runs, "domain_dws_ads", broken)
    with pytest.raises(OSError, match="disk full"):  # anything else is retried
        tasks["dws_ads"].python_callable({})


@pytest.mark.airflow
def test_layer_days_come_from_conf_or_asset_events() -> None:
    from pipelines.orchestration import days_of

    event = type("Event", (), {})
    a, b = event(), event()
    a.extra, b.extra = {"business_date": "2024-11-06"}, {"business_date": "2024-11-05"}
    run = type("Run", (), {"run_after": dt.datetime(2024, 11, 7, 3, tzinfo=dt.UTC)})
    assert days_of({"from": "2024-11-01", "to": "2024-11-03"}, {}, run) == (
        "2024-11-01",
        "2024-11-03",
    )
    assert days_of({}, {"x": [a], "y": [b]}, run) == ("2024-11-05", "2024-11-06")
    assert days_of({"from": None}, None, run) == ("2024-11-06", "2024-11-06")


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.timeout(300)
def test_feed_and_layer_dags_run_one_day(
    airflow_db: Path, spark: SparkSession, lake: Settings
) -> None:
    """The merchant registry's feed DAG ingests the day and passes its ODS gate, emitting its
    Asset with the business date; the payment layer DAG builds DWD → DWS → ADS for the day."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    from citylake.spark import get_spark
    from pipelines.generator import generate_payment
    from pipelines.runs import ingest_day

    generate_payment(Path(lake.landing), DAY, 1, scale=0.005)
    bag = parse_dags()  # a fresh copy: its tasks are changed below
    for dag in bag.dags.values():
        for t in dag.tasks:  # a failure must fail the test now, not wait for retries
            t.retries = 0

    def returned(run: Any, task_id: str) -> Any:
        """What the task returned, read back from XCom."""
        query = XComModel.get_many(
            run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key="return_value"
        )
        with create_session() as session:
            return XComModel.deserialize_value(session.scalars(query).one())

    def succeeded(run: Any) -> None:
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert set(states.values()) == {TaskInstanceState.SUCCESS}, states
        assert run.state == DagRunState.SUCCESS

    feed_run = bag.dags["citylake_feed_merchant_registry"].test(
        logical_date=dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    )
    succeeded(feed_run)
    [delivery] = returned(feed_run, "ingest")
    assert delivery["source"] == f"merchant_registry_{DAY:%Y%m%d}.csv"
    assert delivery["delivered"] == delivery["loaded"] + delivery["quarantined"] > 0
    gate = returned(feed_run, "gate_ods")
    assert gate["deliveries"] == 1 and gate["loaded"] == delivery["loaded"]
    assert gate["gate"].startswith("gate ods passed on ods_merchant_registry")
    # The transactions' database is not running here: the day's file stands in for its pull.
    [txns] = ingest_day("pay_transactions", DAY)
    assert txns["delivered"] == txns["loaded"] + txns["quarantined"] > 0

    run = bag.dags[PAYMENT].test(run_conf={"from": DAY.isoformat(), "to": DAY.isoformat()})
    succeeded(run)
    state = returned(run, "dws_ads")
    # The run restates the week before the day too (late refunds book on their original's day).
    first = DAY - dt.timedelta(days=lake.restatement_days)
    assert (state["start"], state["end"]) == (first.isoformat(), DAY.isoformat())
    assert state["rows"]["ads_trade_daily"] > 0
    assert any(g.startswith("gate dwd→dws passed") for g in state["gates"])

    ads = (
        get_spark()
        .read.format("delta")
        .load(f"{lake.warehouse}/ads/ads_trade_daily")
        .where(f"biz_date = '{DAY.isoformat()}'")
    )
    totals = ads.selectExpr(
        "count(*) AS n",
        "sum(gross_fen) AS gross",
        "sum(refund_fen) AS refund",
        "sum(net_fen) AS net",
    ).first()
    assert totals.n > 0
    assert totals.gross > 0
    assert totals.net == totals.gross - totals.refund
    # Every ADS row names the versions of its own (payment) ODS inputs that build_dwd pinned
    # and handed down via XCom.
    versions = [json.loads(r[0]) for r in ads.select("_input_versions").distinct().collect()]
    pinned = state["input_versions"]
    assert versions == [{name: pinned[name] for name in PAYMENT_INPUTS}]
    # Each task kept its gates' outcomes (the model audits' too) for the days it covered.
    outcomes = get_spark().read.format("delta").load(f"{lake.warehouse}/dwd/dwd_gate_outcome")
    kept = {(r["gate"], r["date_from"], r["date_to"]) for r in outcomes.collect()}
    assert kept == {(gate, first, DAY) for gate in ("ods→dwd", "dwd→dws", "dws/ads audit")}


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.timeout(300)
def test_a_task_that_fails_once_succeeds_on_retry(
    airflow_db: Path, spark: SparkSession, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passing error (the landing share was briefly unreadable) fails the first try; Airflow
    retries the task and the second try ingests the day; the ODS gate then runs on it."""
    from airflow.utils.state import DagRunState

    from pipelines import runs
    from pipelines.generator import generate_payment

    generate_payment(Path(lake.landing), DAY, 1, scale=0.002)
    real, tries = runs.ingest_day, []

    def flaky(feed: str, day: str) -> list[dict]:
        tries.append(day)
        if len(tries) == 1:
            raise OSError("landing share briefly unreachable")
        return real(feed, day)

    monkeypatch.setattr(runs, "ingest_day", flaky)
    dag = parse_dags().dags["citylake_feed_merchant_registry"]
    for t in dag.tasks:  # the DAG's own retry policy, without its minute of waiting
        t.retry_delay = dt.timedelta(seconds=0)
        t.max_retry_delay = dt.timedelta(seconds=1)

    run = dag.test(logical_date=dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC))

    assert run.state == DagRunState.SUCCESS
    attempts = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert attempts == {"ingest": 2, "gate_ods": 1}
    assert tries == [DAY.isoformat(), DAY.isoformat()]


@pytest.mark.airflow
def test_retry_policy_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from citylake.settings import get_settings
    from pipelines.orchestration import generate

    monkeypatch.setenv("CITYLAKE_AIRFLOW__RETRIES", "4")
    monkeypatch.setenv("CITYLAKE_AIRFLOW__RETRY_DELAY_SECONDS", "30")
    monkeypatch.setenv("CITYLAKE_AIRFLOW__RETRY_BACKOFF", "3")
    monkeypatch.setenv("CITYLAKE_AIRFLOW__MAX_RETRY_DELAY_SECONDS", "900")
    get_settings.cache_clear()
    try:
        dags = generate()
    finally:
        get_settings.cache_clear()
    tasks = [t for d in dags.values() for t in d.tasks]
    assert {t.retries for t in tasks} == {4}
    assert {t.retry_delay for t in tasks} == {dt.timedelta(seconds=30)}
    assert {t.retry_exponential_backoff for t in tasks} == {3.0}
    assert {t.max_retry_delay for t in tasks} == {dt.timedelta(minutes=15)}


@pytest.mark.airflow
@pytest.mark.timeout(120)
def test_a_flaky_task_retries_and_a_broken_one_alerts_the_webhook(
    airflow_db: Path, lake: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Under Airflow's own task runner (dag.test, in process): a feed task whose first try
    fails (a marker file says whether it has failed before) succeeds on try 2; a task that
    keeps failing is failed after its retries and its on_failure_callback POSTs the task
    failure alert, once, to a real webhook receiver on loopback."""
    from airflow.utils.state import DagRunState, TaskInstanceState

    from citylake.settings import get_settings
    from pipelines import runs
    from pipelines.orchestration import generate
    from tests.receivers import webhook_receiver

    marker = tmp_path / "failed-once"

    def flaky(feed: str, day: str) -> list[dict]:
        if not marker.exists():
            marker.touch()
            raise OSError("landing share briefly unreachable")
        return [{"feed": feed, "day": day}]

    def broken(feed: str, day: str) -> list[dict]:
        raise OSError("landing share gone")

    def gate(feed: str, day: str) -> dict:
        return {"gate": f"gate ods passed on ods_{feed}", "day": day}

    monkeypatch.setattr(runs, "ods_gate", gate)
    monkeypatch.setenv("CITYLAKE_AIRFLOW__RETRIES", "1")
    monkeypatch.setenv("CITYLAKE_AIRFLOW__RETRY_DELAY_SECONDS", "0")
    with webhook_receiver() as (url, received):
        monkeypatch.setenv("CITYLAKE_ALERTS__WEBHOOK_URL", url)
        get_settings.cache_clear()
        dag = generate()["citylake_feed_merchant_registry"]

        monkeypatch.setattr(runs, "ingest_day", flaky)
        run = dag.test(logical_date=dt.datetime(2024, 11, 4, 18, tzinfo=dt.UTC))
        assert run.state == DagRunState.SUCCESS
        tries = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
        assert tries == {
            "ingest": (TaskInstanceState.SUCCESS, 2),
            "gate_ods": (TaskInstanceState.SUCCESS, 1),
        }
        assert received == []  # a retried failure is no alert

        monkeypatch.setattr(runs, "ingest_day", broken)
        run = dag.test(logical_date=dt.datetime(2024, 11, 5, 18, tzinfo=dt.UTC))
    get_settings.cache_clear()
    assert run.state == DagRunState.FAILED
    states = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert states == {
        "ingest": (TaskInstanceState.FAILED, 2),
        "gate_ods": (TaskInstanceState.UPSTREAM_FAILED, 0),
    }
    [alert] = received
    assert alert["title"] == "【任务失败】citylake_feed_merchant_registry.ingest (task failed)"
    assert "第 2 次尝试失败" in alert["body"] and "landing share gone" in alert["body"]
    assert alert["gate"] == "airflow" and alert["severity"] == "error"


@pytest.mark.airflow
@pytest.mark.timeout(120)
def test_the_operations_view_counts_runs_failures_and_retries(
    airflow_db: Path, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """运维大盘: two runs of a feed DAG under Airflow's own runner, one retried to success and
    one failed for good, appear in the metadata DB's view of that DAG's day."""
    from citylake.operations import dag_days, render
    from citylake.settings import get_settings
    from pipelines import runs
    from pipelines.orchestration import generate

    tries: list[str] = []

    def flaky(feed: str, day: str) -> list[dict]:
        tries.append(day)
        if day == "2024-11-06" or len(tries) == 1:
            raise OSError("landing share unreachable")
        return []

    monkeypatch.setattr(runs, "ingest_day", flaky)
    monkeypatch.setattr(runs, "ods_gate", lambda feed, day: {"gate": "passed"})
    monkeypatch.setenv("CITYLAKE_AIRFLOW__RETRIES", "1")
    monkeypatch.setenv("CITYLAKE_AIRFLOW__RETRY_DELAY_SECONDS", "0")
    get_settings.cache_clear()
    dag = generate()["citylake_feed_merchant_orders"]
    get_settings.cache_clear()
    dag.test(logical_date=dt.datetime(2024, 11, 4, 18, tzinfo=dt.UTC))
    dag.test(logical_date=dt.datetime(2024, 11, 5, 18, tzinfo=dt.UTC))

    view = [r for r in dag_days(days=1) if r.dag_id == dag.dag_id]
    assert sum(r.runs for r in view) == 2
    assert sum(r.succeeded for r in view) == 1 and sum(r.failed for r in view) == 1
    assert sum(r.failed_tasks for r in view) == 1  # the ingest of the 6th, for good
    assert sum(r.retried_tasks for r in view) == 2  # both ingests took two tries
    assert all(r.max_seconds is not None and r.max_seconds >= 0 for r in view)
    assert dag.dag_id in render(view)
