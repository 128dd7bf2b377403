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

DAG_ID = "citylake_payment_daily"
TASKS = {
    "ingest_merchant_registry",
    "ingest_pay_transactions",
    "build_dwd",
    "gate_dwd_to_dws",
    "build_dws_ads",
}
EDGES = {
    ("ingest_merchant_registry", "build_dwd"),
    ("ingest_pay_transactions", "build_dwd"),
    ("build_dwd", "gate_dwd_to_dws"),
    ("gate_dwd_to_dws", "build_dws_ads"),
}
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


@pytest.mark.airflow
def test_dag_folder_imports_cleanly_and_fast(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags
    # Parsing must not load Spark or the pipelines (imports happen inside the tasks).
    assert dagbag.parse_seconds < 1, f"parsing dags/ took {dagbag.parse_seconds:.1f} s"


@pytest.mark.airflow
def test_payment_daily_shape(dagbag: DagBag) -> None:
    dag = dagbag.dags[DAG_ID]
    assert set(dag.task_ids) == TASKS
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert edges == EDGES
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert set(dag.tags) == {"payment", "citylake"}
    assert dag.start_date == dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    assert "支付" in dag.doc_md and "payment" in dag.doc_md
    for t in dag.tasks:
        assert t.retries == 2, t.task_id
        assert t.retry_delay == dt.timedelta(minutes=1), t.task_id
        assert t.retry_exponential_backoff == 2.0, t.task_id
        assert not t.multiple_outputs, t.task_id  # one JSON value per task


@pytest.mark.airflow
def test_data_problems_fail_without_retry(dagbag: DagBag, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines import runs
    from quality.gate import CheckResult, GateBlocked, GateResult

    tasks = dagbag.dags[DAG_ID].task_dict
    calls: list[tuple] = []

    def lost_lines(feed: str, day: str) -> list[dict]:
        calls.append((feed, day))
        raise runs.DeliveryNotReconciled("delivered 3 != loaded 1 + quarantined 1")

    def blocked(state: dict) -> dict:
        check = CheckResult("not_null(merchant_id)", "block", False, 2, 50.0, [])
        raise GateBlocked(GateResult("dwd→dws", "dwd_merchant", 4, [check]))

    def broken(day: str) -> dict:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "ingest_day", lost_lines)
    monkeypatch.setattr(runs, "gate_day", blocked)
    monkeypatch.setattr(runs, "dwd_day", broken)
    with pytest.raises(AirflowFailException, match="delivered 3"):
        tasks["ingest_pay_transactions"].python_callable(ds="2024-11-05")
    assert calls == [("pay_transactions", "2024-11-05")]
    with pytest.raises(AirflowFailException, match="BLOCKED on table dwd_merchant"):
        tasks["gate_dwd_to_dws"].python_callable({})
    with pytest.raises(OSError, match="disk full"):  # anything else is retried
        tasks["build_dwd"].python_callable(ds="2024-11-05")


@pytest.mark.airflow
@pytest.mark.spark
@pytest.mark.timeout(300)
def test_payment_daily_runs_one_day(airflow_db: Path, spark: SparkSession, lake: Settings) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    from citylake.spark import get_spark
    from pipelines.generator import generate_payment

    generate_payment(Path(lake.landing), DAY, 1, scale=0.005)
    dag = parse_dags().dags[DAG_ID]  # a fresh copy: its tasks are changed below
    for t in dag.tasks:  # a failure must fail the test now, not wait for retries
        t.retries = 0

    run = dag.test(logical_date=dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC))

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == dict.fromkeys(TASKS, TaskInstanceState.SUCCESS)
    assert run.state == DagRunState.SUCCESS

    def returned(task_id: str) -> Any:
        """What the task returned, read back from XCom."""
        query = XComModel.get_many(
            run_id=run.run_id, dag_ids=DAG_ID, task_ids=task_id, key="return_value"
        )
        with create_session() as session:
            return XComModel.deserialize_value(session.scalars(query).one())

    for feed, task_id in (
        ("merchant_registry", "ingest_merchant_registry"),
        ("pay_transactions", "ingest_pay_transactions"),
    ):
        [delivery] = returned(task_id)
        assert delivery["source"] == f"{feed}_{DAY:%Y%m%d}.csv"
        assert delivery["delivered"] == delivery["loaded"] + delivery["quarantined"] > 0

    state = returned("build_dws_ads")
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
