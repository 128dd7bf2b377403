"""ads_quality_scorecard through the real path: files ingested, a build blocked by its gate, a
build that passes, the scorecard read back. The numbers are counted by hand below.

Timeliness compares when a delivery landed (now: ingestion stamps `finished_at`) with its
deadline, so the days are relative to today (+08:00): a delivery for today is due tomorrow
and lands on time whenever the test runs; one for three days ago landed after its deadline.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pyspark.sql.functions as F
import pytest

from citylake.settings import Settings, get_settings
from pipelines import tables
from pipelines.build import build
from pipelines.ingest import ingest_file
from pipelines.landing import read_delivery
from quality.gate import GateBlocked
from quality.suites import contract_checks
from tests.payment_files import TXN_HEADER, registry, txn, write
from warehouse_layers.contract import input_roots

MODEL = Path(__file__).resolve().parent.parent / "models" / "ads" / "ads_quality_scorecard.sql"
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
D3, D2, D1 = (TODAY - dt.timedelta(days=n) for n in (3, 2, 1))


@pytest.fixture
def city(lake: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test lake, with the models starting a week before the first day (not in 2024)."""
    monkeypatch.setenv("CITYLAKE_MODELS_START", (D3 - dt.timedelta(days=7)).isoformat())
    get_settings.cache_clear()
    return get_settings()


def _at(day: dt.date, time: str) -> str:
    return f"{day}T{time}+08:00"


def _scorecard(spark) -> dict[tuple[str, dt.date], dict]:
    rows = tables.read(spark, tables.contract("ads_quality_scorecard")).collect()
    return {(r["feed"], r["biz_date"]): r.asDict() for r in rows}


def _counts(row: dict) -> tuple:
    keys = ("delivered", "loaded", "quarantined", "timeliness", "checks_passed", "checks_failed")
    return tuple(row[k] for k in keys)


@pytest.mark.parametrize(
    ("header", "incomplete"),
    [
        (["txn_id", "merchant_id"], True),  # required columns missing: every row lacks them
        ([*TXN_HEADER, "note"], False),  # an extra column: rejected, but nothing is missing
    ],
)
def test_the_scorecard_reads_a_header_lacking_columns_as_incomplete(
    tmp_path: Path, header: list[str], incomplete: bool
) -> None:
    """The model tells missing columns from other header mismatches by the ingest detail."""
    path = write(tmp_path, "pay_transactions", "2024-11-05", "x.csv", header, [header])
    read = read_delivery(path, TXN_HEADER, "pay_transactions")
    assert {r.reason for r in read.rejects} == {"header_mismatch"}
    pattern = "contract: missing "
    assert f"detail LIKE '%{pattern}%'" in MODEL.read_text(encoding="utf-8")
    assert all((pattern in r.detail) == incomplete for r in read.rejects)


@pytest.mark.spark
def test_scorecard_of_a_late_a_missing_a_blocked_and_an_on_time_day(spark, city: Settings) -> None:
    landing = Path(city.landing)
    # D-3: the registry (M1, M2) and two transactions, one with an amount that is no amount.
    # Half the rows break the contract: the ODS→DWD gate (≤ 5 %) blocks the build of D-3.
    ingest_file(registry(landing, str(D3)), "merchant_registry")
    bad = [txn("T1", "M1", _at(D3, "10:00:00"), 1000), txn("T2", "M1", _at(D3, "11:00:00"), "abc")]
    ingest_file(
        write(landing, "pay_transactions", str(D3), "d3.csv", TXN_HEADER, bad), "pay_transactions"
    )
    with pytest.raises(GateBlocked, match="ods_pay_transactions"):
        build(D3, D3)

    # D-2 and D-1: nothing delivered. Today: 20 sales, a late sale of D-3 evening (it books on
    # D-3, so the build restates D-3), a sale without amount (missing_value in DWD) and a line
    # of two fields (malformed_row at ingestion): 23 delivered, 1 + 1 quarantined, 21 loaded.
    good = [txn(f"T{10 + i}", "M1", _at(TODAY, f"00:{i:02d}:00"), 100) for i in range(20)]
    late = txn("L1", "M1", _at(D3, "20:00:00"), 500)
    no_amount = txn("T30", "M1", _at(TODAY, "00:30:00"), "")
    rows = [*good, late, no_amount, ["T31", "M1"]]
    ingest_file(
        write(landing, "pay_transactions", str(TODAY), "d.csv", TXN_HEADER, rows),
        "pay_transactions",
    )
    result = build(D2, TODAY)  # the gate: 1 contract break in 22 rows of today, 4.5 %
    assert result.days == {D3}

    contracts = tables.contracts()
    txn_table, merchant = contracts["dwd_pay_transaction"], contracts["dwd_merchant"]
    txn_checks = len(contract_checks(txn_table)) + len(txn_table.cross_checks)  # its daily band too
    merchant_checks = len(contract_checks(merchant)) + len(merchant.cross_checks)
    # Each build's gates cover its days; transactions derive from both feeds, merchants from one.
    pay_checks = 1 + txn_checks  # ODS→DWD reject share + dwd_pay_transaction's contract
    registry_checks = 1 + merchant_checks + txn_checks
    card = _scorecard(spark)
    assert set(card) == {
        (feed, day)
        for feed in ("pay_transactions", "merchant_registry")
        for day in (D3, D2, D1, TODAY)
    }  # feeds that never delivered are not due; days before a feed's first delivery neither
    assert {r["owner_department"] for r in card.values()} == {"市商务局"}

    # D-3, restated by today's build: delivered late (landed now, due D-2 06:00). The blocked
    # delivery never reached DWD, so no contract break of it is quarantined yet: loaded counts
    # it (delivered − quarantined) and the failed gate check says why the day is not settled.
    pay = card[("pay_transactions", D3)]
    assert _counts(pay) == (2, 2, 0, 0.0, 0, 1)
    assert (pay["completeness"], pay["validity"]) == (1.0, 1.0)
    registry_d3 = card[("merchant_registry", D3)]
    # Its own gates passed before the block: the reject share and dwd_merchant's contract (the
    # merchants are written and judged before the transactions are read); and, the merchants
    # promoted, the audits of the models built from them (the fund backflow, the scorecard).
    assert _counts(registry_d3) == (2, 2, 0, 0.0, 1 + merchant_checks + 1, 0)

    # D-2 and D-1: due, nothing delivered: timeliness 0, ratios NULL, the passing build's checks.
    for day in (D2, D1):
        assert _counts(card[("pay_transactions", day)]) == (0, 0, 0, 0.0, pay_checks, 0)
        assert _counts(card[("merchant_registry", day)]) == (0, 0, 0, 0.0, registry_checks, 0)
        assert card[("pay_transactions", day)]["completeness"] is None
        assert card[("pay_transactions", day)]["validity"] is None

    # Today: on time (due tomorrow 06:00); completeness (23 − 1 missing) / 23, validity 21 / 23.
    pay = card[("pay_transactions", TODAY)]
    assert _counts(pay) == (23, 21, 2, 1.0, pay_checks, 0)
    assert pay["completeness"] == pytest.approx(22 / 23)
    assert pay["validity"] == pytest.approx(21 / 23)
    assert _counts(card[("merchant_registry", TODAY)]) == (0, 0, 0, 0.0, registry_checks, 0)

    # Every row carries the versions of the roots of its lineage: the delivery log's, not its
    # copy's (dwd_feed_delivery), and the other four tables it read.
    versions = json.loads(pay["_input_versions"])
    assert set(versions) == input_roots("ads_quality_scorecard", contracts)
    assert "ods_delivery_log" in versions

    # Both builds' outcomes are in the table; the model audits' pass came after the scorecard.
    outcomes = tables.read(spark, contracts["dwd_gate_outcome"])
    blocked = outcomes.where(~F.col("success")).collect()
    assert [(r["gate"], r["table_name"], r["date_from"], r["date_to"]) for r in blocked] == [
        ("ods→dwd", "ods_pay_transactions", D3, D3)
    ]
    audits = outcomes.where(F.col("gate") == "dws/ads audit").orderBy("date_from").collect()
    # The blocked build still computed what its block does not hold (the scorecard itself).
    assert [(r["success"], r["date_from"], r["date_to"]) for r in audits] == [
        (True, D3, D3),
        (True, D2, TODAY),
    ]
    assert "pay_transactions" not in audits[0]["feeds"]
    assert "pay_transactions" in audits[1]["feeds"]
