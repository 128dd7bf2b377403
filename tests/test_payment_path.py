"""The payment feed end to end on Spark + Delta: ingest → ODS → DWD → DWS → ADS.

Expectations are computed by hand from tiny deliveries (tests/payment_files.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from citylake.settings import Settings
from pipelines import tables
from pipelines.build import _ods, build, pin_inputs
from pipelines.ingest import ingest_file, ingest_files
from quality.gate import GateBlocked
from tests.payment_files import MERCHANT_HEADER, TXN_HEADER, merchant, registry, txn, write

pytestmark = pytest.mark.spark

D5, D6, D7 = "2024-11-05", "2024-11-06", "2024-11-07"
LINGLING, LENGSHUITAN = "431102", "431103"


def _table(spark, name: str):
    return tables.read(spark, tables.contract(name))


def _ads(spark, day: str) -> dict[tuple[str, str, str], dict]:
    rows = _table(spark, "ads_trade_daily").where(F.col("biz_date") == day).collect()
    return {(r.district_code, r.sector, r.channel): r.asDict() for r in rows}


def _registry(lake: Settings) -> Path:
    return registry(Path(lake.landing))


def _deliver_txns(lake: Settings, day: str, name: str, rows: list[list[str]]):
    path = write(Path(lake.landing), "pay_transactions", day, name, TXN_HEADER, rows)
    return ingest_file(path, "pay_transactions")


def test_refund_two_days_later_lowers_the_original_day(spark, lake: Settings) -> None:
    ingest_file(_registry(lake), "merchant_registry")
    _deliver_txns(
        lake,
        D5,
        "d5.csv",
        [
            txn("T1", "M1", "2024-11-05T12:00:00+08:00", 10000),
            txn("T2", "M1", "2024-11-05T23:59:59+08:00", 2500),
            txn("T3", "M2", "2024-11-05T08:00:00+08:00", 700, channel="alipay"),
        ],
    )
    build()
    before = _ads(spark, D5)[(LINGLING, "catering", "wechat")]
    assert (before["txn_count"], before["gross_fen"], before["refund_fen"], before["net_fen"]) == (
        2,
        12500,
        0,
        12500,
    )
    assert before["active_merchants"] == 1

    # Two days later: a partial refund of T1 (own txn_id, refund_of = T1) and a reversal of T2
    # (same txn_id, later updated_at). Both book back on 11-05.
    _deliver_txns(
        lake,
        D7,
        "d7.csv",
        [
            txn("R1", "M1", "2024-11-07T10:00:00+08:00", 4000, status="refund", refund_of="T1"),
            txn(
                "T2",
                "M1",
                "2024-11-05T23:59:59+08:00",
                2500,
                status="reversed",
                updated="2024-11-07T10:05:00+08:00",
            ),
        ],
    )
    build(dt.date(2024, 11, 5), dt.date(2024, 11, 5))
    after = _ads(spark, D5)
    cell = after[(LINGLING, "catering", "wechat")]
    # T1 and T2 still count as transactions; refund = 4000 (R1) + 2500 (T2 reversed).
    assert (cell["txn_count"], cell["gross_fen"], cell["refund_fen"], cell["net_fen"]) == (
        2,
        12500,
        6500,
        6000,
    )
    assert after[(LENGSHUITAN, "retail", "alipay")]["net_fen"] == 700
    assert _table(spark, "ads_trade_daily").where(F.col("biz_date") == D7).count() == 0

    # Rebuilding the day again gives identical rows, apart from when they were computed.
    first = sorted(_ads(spark, D5).items())
    build(dt.date(2024, 11, 5), dt.date(2024, 11, 5))
    second = sorted(_ads(spark, D5).items())
    strip = lambda rows: [(k, {c: v for c, v in r.items() if c != "_computed_at"}) for k, r in rows]  # noqa: E731
    assert strip(first) == strip(second)
    assert '"ods_pay_transactions"' in first[0][1]["_input_versions"]


def test_reingesting_the_same_file_changes_no_table(spark, lake: Settings) -> None:
    path = _registry(lake)
    first = ingest_file(path, "merchant_registry")
    names = ("ods_merchant_registry", "ods_quarantine", "ods_delivery_log")
    versions = {n: tables.version(spark, tables.contract(n)) for n in names}
    again = ingest_file(path, "merchant_registry")
    copy = path.with_name("renamed-copy.csv")
    copy.write_bytes(path.read_bytes())
    renamed = ingest_file(copy, "merchant_registry")
    assert again.already_ingested and renamed.already_ingested
    assert again.delivery_id == first.delivery_id == renamed.delivery_id
    assert {n: tables.version(spark, tables.contract(n)) for n in names} == versions
    assert _table(spark, "ods_merchant_registry").count() == 2


def test_a_crash_between_writes_converges_on_rerun(
    spark,
    lake: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Crash after the ODS append, before the delivery log (the commit marker) is written."""
    path = write(
        Path(lake.landing),
        "merchant_registry",
        D5,
        "registry.csv",
        MERCHANT_HEADER,
        [merchant("M1", LINGLING), merchant("M2", LENGSHUITAN, "retail"), ["M3", "", "x", "5812"]],
    )  # one malformed row, so all three writes happen
    real_append = tables.append_native

    def crash_on_log(data, table, **kwargs):
        if table.name == "ods_delivery_log":
            raise KeyboardInterrupt("simulated crash")
        return real_append(data, table, **kwargs)

    monkeypatch.setattr(tables, "append_native", crash_on_log)
    with pytest.raises(KeyboardInterrupt):
        ingest_file(path, "merchant_registry")
    monkeypatch.setattr(tables, "append_native", real_append)
    # The uncommitted delivery's rows are in ODS but invisible to the build until its rerun.
    assert _table(spark, "ods_merchant_registry").count() == 2
    assert _ods(spark, "ods_merchant_registry", pin_inputs(spark, lake), lake).count() == 0
    rerun = ingest_file(path, "merchant_registry")
    assert not rerun.already_ingested and rerun.reconciles
    assert _ods(spark, "ods_merchant_registry", pin_inputs(spark, lake), lake).count() == 2
    assert _table(spark, "ods_merchant_registry").count() == 2  # not 4
    assert _table(spark, "ods_quarantine").count() == 1  # not 2
    assert _table(spark, "ods_delivery_log").count() == 1


@pytest.mark.parametrize("case", ["wrong_header", "gbk", "truncated_last_line"])
def test_bad_files_give_a_clear_error_or_quarantine_never_a_lost_row(
    spark,
    lake: Settings,
    case: str,
) -> None:
    landing = Path(lake.landing)
    rows = [merchant("M1", LINGLING), merchant("M2", LENGSHUITAN, "retail")]
    if case == "wrong_header":
        header = [*MERCHANT_HEADER[:-1], "last_modified"]
        path = write(landing, "merchant_registry", D5, "r.csv", header, rows)
    elif case == "gbk":
        path = write(landing, "merchant_registry", D5, "r.csv", MERCHANT_HEADER, rows, "gbk")
    else:
        path = write(landing, "merchant_registry", D5, "r.csv", MERCHANT_HEADER, rows)
        path.write_bytes(path.read_bytes()[:-40])  # cut mid-line: two fields lost
    result = ingest_file(path, "merchant_registry")
    assert result.delivered == 2 and result.reconciles
    quarantine = _table(spark, "ods_quarantine").where(F.col("delivery_id") == result.delivery_id)
    if case == "wrong_header":
        assert result.status == "rejected" and result.loaded == 0
        assert "missing ['updated_at']" in result.error and "last_modified" in result.error
        assert {r.reason_code for r in quarantine.collect()} == {"header_mismatch"}
    elif case == "gbk":
        assert result.source_format == "csv/gbk" and result.loaded == 2
        names = {r.name for r in _table(spark, "ods_merchant_registry").collect()}
        assert names == {"商户M1", "商户M2"}
    else:
        assert result.loaded == 1 and result.quarantined == 1
        (bad,) = quarantine.collect()
        assert (bad.reason_code, bad.source_line) == ("malformed_row", 3)
        assert "expected 10 fields" in bad.detail


def test_contract_breaks_are_quarantined_with_reason_and_position(spark, lake: Settings) -> None:
    ingest_file(_registry(lake), "merchant_registry")
    _deliver_txns(
        lake,
        D5,
        "d5.csv",
        [
            txn("T1", "M1", "2024/11/5 12:00:00", "¥1,200"),  # normalized: date form, ¥ and comma
            txn("T2", "M1", "2024年11月5日 13:00:00", "３００"),  # full-width digits
            txn("T3", "M1", "昨天", 100),  # unparsable time
            txn("T4", "M9", "2024-11-05T10:00:00+08:00", 100),  # unknown merchant
            txn("T5", "M1", "2024-11-05T10:00:00+08:00", -5),  # negative amount
            txn("R9", "M1", "2024-11-05T11:00:00+08:00", 50, status="refund", refund_of="T404"),
            txn(
                "T1", "M1", "2024/11/5 12:00:00", "¥1,200"
            ),  # exact duplicate: loaded, deduplicated
        ]
        + [txn(f"T{i}", "M2", "2024-11-05T09:00:00+08:00", 100) for i in range(10, 110)],
    )
    build()
    quarantined = {
        (r.source_line, r.reason_code, r.column_name)
        for r in _table(spark, "dwd_quarantine").collect()
    }
    assert quarantined == {
        (4, "bad_timestamp", "txn_time"),
        (5, "unknown_merchant", "merchant_id"),
        (6, "out_of_range", "amount_fen"),
        (7, "unknown_original", "refund_of"),
    }
    dwd = {r.txn_id: r for r in _table(spark, "dwd_pay_transaction").collect()}
    assert dwd["T1"].amount_fen == 1200 and dwd["T2"].amount_fen == 300
    assert dwd["T1"].biz_date == dt.date(2024, 11, 5)
    assert len(dwd) == 102  # T1, T2 and T10..T109; the duplicate of T1 collapsed


def test_merchant_that_moved_district_books_by_the_version_valid_at_txn_time(
    spark,
    lake: Settings,
) -> None:
    landing = Path(lake.landing)
    ingest_file(_registry(lake), "merchant_registry")
    ingest_file(
        write(
            landing,
            "merchant_registry",
            D6,
            "move.csv",
            MERCHANT_HEADER,
            [merchant("M1", LENGSHUITAN, updated="2024-11-06T12:00:00+08:00")],
        ),
        "merchant_registry",
    )
    ingest_files(
        "pay_transactions",
        [
            write(
                landing,
                "pay_transactions",
                D6,
                "d6.csv",
                TXN_HEADER,
                [
                    txn("T1", "M1", "2024-11-06T11:59:59+08:00", 100),
                    txn("T2", "M1", "2024-11-06T12:00:00+08:00", 200),
                ],
            )
        ],
    )
    build()
    history = (
        _table(spark, "dwd_merchant").where("merchant_id = 'M1'").orderBy("valid_from").collect()
    )
    assert [(h.district_code, h.is_current) for h in history] == [
        (LINGLING, False),
        (LENGSHUITAN, True),
    ]
    ads = _ads(spark, D6)
    assert ads[(LINGLING, "catering", "wechat")]["gross_fen"] == 100
    assert ads[(LENGSHUITAN, "catering", "wechat")]["gross_fen"] == 200


def test_a_failing_blocking_check_stops_promotion_and_names_it(spark, lake: Settings) -> None:
    ingest_file(_registry(lake), "merchant_registry")
    _deliver_txns(
        lake,
        D5,
        "good.csv",
        [txn(f"T{i}", "M1", "2024-11-05T10:00:00+08:00", 100) for i in range(20)],
    )
    build()
    versions = {
        n: tables.version(spark, tables.contract(n))
        for n in ("dwd_pay_transaction", "dws_trade_merchant_daily", "ads_trade_daily")
    }
    # The next day's delivery is mostly garbage: 10 of 12 rows have unparsable amounts.
    _deliver_txns(
        lake,
        D6,
        "bad.csv",
        [txn(f"B{i}", "M1", "2024-11-06T10:00:00+08:00", "n/a") for i in range(10)]
        + [txn(f"G{i}", "M1", "2024-11-06T10:00:00+08:00", 1) for i in range(2)],
    )
    with pytest.raises(GateBlocked) as blocked:
        build(dt.date(2024, 11, 6), dt.date(2024, 11, 6))
    message = str(blocked.value)
    assert "ods→dwd" in message and "ods_pay_transactions" in message
    assert "quarantined share <= 5%" in message
    assert "quarantine reasons: bad_amount 10" in message
    after = {n: tables.version(spark, tables.contract(n)) for n in versions}
    assert after == versions


@pytest.mark.parametrize("fmt", ["xlsx", "jsonl"])
def test_xlsx_and_json_lines_deliveries_load_like_csv(spark, lake: Settings, fmt: str) -> None:
    import json

    import openpyxl

    rows = [merchant("M1", LINGLING), merchant("M2", LENGSHUITAN, "retail")]
    path = Path(lake.landing) / "merchant_registry" / D5 / f"registry.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        book = openpyxl.Workbook()
        book.active.append(MERCHANT_HEADER)
        for row in rows:
            book.active.append(row)
        book.save(path)
    else:
        lines = [
            json.dumps(dict(zip(MERCHANT_HEADER, r, strict=True)), ensure_ascii=False) for r in rows
        ]
        path.write_text("\n".join([*lines, "{not json"]) + "\n", encoding="utf-8")
    result = ingest_file(path, "merchant_registry")
    assert result.reconciles and result.loaded == 2
    assert result.source_format.startswith(fmt)
    names = {r.name for r in _table(spark, "ods_merchant_registry").collect()}
    assert names == {"商户M1", "商户M2"}
    if fmt == "jsonl":
        (bad,) = _table(spark, "ods_quarantine").collect()
        assert (bad.reason_code, bad.source_line) == ("bad_json", 3)
