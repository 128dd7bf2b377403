"""Daily payment path: landing -> ODS -> DWD -> gate -> DWS/ADS, one business day per run.

Thin on purpose: every task is one call into ``pipelines.runs``, imported inside the task so
parsing this file never loads Spark. Tasks exchange only JSON (dates as ISO strings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

Json = dict[str, Any]  # what tasks return and pass on: JSON only, dates as ISO strings

DOC_MD = """
### citylake_payment_daily · 支付数据日处理

**中文**：每天处理一个业务日（运行的逻辑日期 `ds`）的支付数据：
1. `ingest_merchant_registry` / `ingest_pay_transactions`：把落地区
   `<landing>/<feed>/<ds>/` 下的文件精确一次地接入 ODS（文件夹不存在则跳过）；
   任一批次 “接收 = 入库 + 隔离” 不成立即失败。
2. `build_dwd`：ODS → DWD（当天），固定所读 ODS 表的 Delta 版本，经过 ODS→DWD 质量门。
3. `gate_dwd_to_dws`：DWD→DWS 质量门（按表契约校验 DWD）；被拦截则下游不变。
4. `build_dws_ads`：重算当天的 DWS 与驾驶舱指标 `ads_trade_daily`，并记录输入版本以便时间旅行复现。

质量门拦截或对账不平属于数据问题，任务直接失败、不重试；其他错误最多重试 2 次（指数退避）。

**English**: processes one business day (the run's logical date `ds`) of the payment feeds:
1. `ingest_merchant_registry` / `ingest_pay_transactions`: exactly-once ingest of the files in
   `<landing>/<feed>/<ds>/` into ODS (skipped when the folder does not exist); fails if any
   delivery does not reconcile (delivered = loaded + quarantined).
2. `build_dwd`: ODS → DWD for the day, at pinned ODS Delta versions, behind the ODS→DWD gate.
3. `gate_dwd_to_dws`: the DWD→DWS gate (DWD checked against its contracts); a block stops
   everything downstream.
4. `build_dws_ads`: rebuilds DWS and the cockpit table `ads_trade_daily` for the day, stamped
   with the input versions for time-travel reproduction.

A blocked gate or an unreconciled delivery is a data problem: the task fails without retrying.
Other errors are retried twice with exponential backoff.
"""


@contextmanager
def _fail_without_retry() -> Iterator[None]:
    """Data problems (blocked gate, lost lines) fail at once: retrying cannot fix the data."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.runs import DeliveryNotReconciled
    from quality.gate import GateBlocked

    try:
        yield
    except (GateBlocked, DeliveryNotReconciled) as exc:
        raise AirflowFailException(str(exc)) from exc


def _day(ds: str | None, dag_run: Any) -> str:
    """The business day: `ds`, or the run_after date for runs triggered without a logical date."""
    return ds or dag_run.run_after.date().isoformat()


@dag(
    dag_id="citylake_payment_daily",
    # 02:00 Beijing time, for the business day that just ended (ds = the data interval's start).
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="Asia/Shanghai"),
    start_date=dt.datetime(2024, 11, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,  # one Spark JVM at a time on a 2-core node; no table-creation races
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3 (True would mean 1.0)
        "max_retry_delay": dt.timedelta(minutes=10),
    },
    tags=["payment", "citylake"],
    doc_md=DOC_MD,
)
def citylake_payment_daily() -> None:
    @task
    def ingest_merchant_registry(ds: str | None = None, dag_run: Any = None) -> list[Json]:
        from pipelines.runs import ingest_day

        with _fail_without_retry():
            return ingest_day("merchant_registry", _day(ds, dag_run))

    @task
    def ingest_pay_transactions(ds: str | None = None, dag_run: Any = None) -> list[Json]:
        from pipelines.runs import ingest_day

        with _fail_without_retry():
            return ingest_day("pay_transactions", _day(ds, dag_run))

    @task(multiple_outputs=False)  # one JSON value, not one XCom per key
    def build_dwd(ds: str | None = None, dag_run: Any = None) -> Json:
        from pipelines.runs import dwd_day

        with _fail_without_retry():
            return dwd_day(_day(ds, dag_run))

    @task(multiple_outputs=False)  # one JSON value, not one XCom per key
    def gate_dwd_to_dws(state: Json) -> Json:
        from pipelines.runs import gate_day

        with _fail_without_retry():
            return gate_day(state)

    @task(multiple_outputs=False)  # one JSON value, not one XCom per key
    def build_dws_ads(state: Json) -> Json:
        from pipelines.runs import dws_ads_day

        return dws_ads_day(state)

    dwd = build_dwd()
    [ingest_merchant_registry(), ingest_pay_transactions()] >> dwd
    build_dws_ads(gate_dwd_to_dws(dwd))


citylake_payment_daily()
