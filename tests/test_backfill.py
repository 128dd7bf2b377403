"""补数据: a backfill of three days in one run equals three single-day runs, row for row in ADS.

Two warehouses get the same three days of deliveries (tests/test_incremental_dwd.py's, which
reach back in time: a refund booking on an earlier day, a re-delivered transaction, a
transaction before its merchant, a merchant moving district). One is built as the layer DAG's
backfill builds it (conf ``from``/``to``: one ``domain_dwd`` + ``domain_dws_ads`` of the range,
after every day was delivered); the other as the scheduler builds it day by day (each day
delivered, then its run). Every ADS table must hold the same rows in both, the quality
scorecard's too (but for the model audits it counts, which ran at different times).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from citylake.settings import Settings, get_settings
from pipelines import runs, tables
from tests.ads_tables import RUN_STAMPS, ads_rows
from tests.test_incremental_dwd import D5, D6, D7, _deliver

pytestmark = pytest.mark.spark


def _use(root: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CITYLAKE_WAREHOUSE", str(root / "lakehouse"))
    monkeypatch.setenv("CITYLAKE_LANDING", str(root / "landing"))
    monkeypatch.setenv("CITYLAKE_VAR_DIR", str(root / "var"))
    # The data reaches two days back (the 7th's delivery rewrites the 5th): a two-day
    # restatement window covers it, and the models need hold no earlier day. Both cut the
    # models' work to the days that matter, for both warehouses alike.
    monkeypatch.setenv("CITYLAKE_RESTATEMENT_DAYS", "2")
    monkeypatch.setenv("CITYLAKE_MODELS_START", (D5 - dt.timedelta(days=2)).isoformat())
    get_settings.cache_clear()
    return get_settings()


def _run(start: dt.date, end: dt.date) -> dict:
    """The payment layer DAG's two tasks, as Airflow runs them (JSON state between them)."""
    state = runs.domain_dwd("payment", start.isoformat(), end.isoformat())
    return runs.domain_dws_ads(json.loads(json.dumps(state)))


@pytest.mark.timeout(900)
def test_a_backfill_of_three_days_equals_three_single_day_runs(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backfill = _use(tmp_path / "backfill", monkeypatch)
    for day in (D5, D6, D7):
        _deliver(backfill, day)
    _run(D5, D7)
    in_one_go = ads_rows(backfill)

    daily = _use(tmp_path / "daily", monkeypatch)
    for day in (D5, D6, D7):
        _deliver(daily, day)
        _run(day, day)
    day_by_day = ads_rows(daily)
    get_settings.cache_clear()

    # The scorecard counts the latest outcome of each check covering a day, the model audits'
    # too, which are kept after the models run: the daily runs had audited the 5th and the 6th
    # before the last run's scorecard, the backfill's one run had not. So its checks passed
    # differ by that audit; every other figure must not.
    columns = tables.contract("ads_quality_scorecard", backfill).columns
    passed = [c.name for c in columns if c.name not in RUN_STAMPS].index("checks_passed")
    for rows in (in_one_go, day_by_day):
        card = rows["ads_quality_scorecard"]
        rows["ads_quality_scorecard"] = sorted(r[:passed] + r[passed + 1 :] for r in card)
    assert in_one_go == day_by_day
    trade = in_one_go["ads_trade_daily"]
    # Not vacuous: all three days booked, the 5th with the late refund and re-delivery.
    assert {r[0] for r in trade} >= {str(D5), str(D6), str(D7)}, trade
    # The layer DAG restates the quality scorecard of its days too, as `citylake build` does.
    scored = {(r[0], r[1]) for r in in_one_go["ads_quality_scorecard"]}
    assert scored >= {(str(d), "pay_transactions") for d in (D5, D6, D7)}, scored
