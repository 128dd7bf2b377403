"""The payment source database channel against a real PostgreSQL: incremental pulls by
`updated_at` watermark, late updates and refunds, crashes and reruns, full reload."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pydantic import SecretStr

from citylake import processes
from citylake.postgres import (
    SERVICE,
    connect_source_db,
    data_dir,
    start_source_db,
    stop_source_db,
)
from citylake.settings import Settings
from citylake.spark import get_spark
from pipelines import tables
from pipelines.channels import database, staging
from pipelines.channels.database import pull_database
from pipelines.ingest import ingest_file
from sources import payment_db
from tests.source_db import alive, running_source_db, server_pids

pytestmark = pytest.mark.spark

TXNS = "pay_transactions"
SETTLEMENTS = "pay_settlements"


@pytest.fixture(scope="module")
def source_server() -> Iterator[Settings]:
    with running_source_db() as settings:
        yield settings


@pytest.fixture
def payments(source_server: Settings, lake: Settings) -> Iterator[Settings]:
    """This test's lakehouse, pulling from freshly created payment tables (64 rows a page)."""
    db = source_server.source_db.model_copy(update={"batch_rows": 64})
    settings = lake.model_copy(update={"source_db": db})
    with connect_source_db(settings, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS pay_transactions, pay_settlements")
        payment_db.create_schema(conn)
    yield settings


def txn(i: int, **changes: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "txn_id": f"T{i:06d}",
        "merchant_id": f"M{i % 7:08d}",
        "txn_time": f"2024-11-05T10:{i // 60 % 60:02d}:{i % 60:02d}+08:00",
        "amount_fen": str(100 + i),
        "channel": "wechat",
        "status": "success",
        "refund_of": "",
        "payer_region_code": "431102",
        "terminal_id": f"TERM{i % 3}",
        "updated_at": "1999-01-01T00:00:00+08:00",  # the database keeps its own
    }
    return row | changes


def load_txns(settings: Settings, rows: list[dict[str, str | None]]) -> payment_db.LoadReport:
    with connect_source_db(settings) as conn:
        return payment_db.load_transactions(conn, rows)


def ods(settings: Settings, feed: str) -> list[dict]:
    df = tables.read(get_spark(settings), tables.feed_contract(feed, settings), settings=settings)
    return [r.asDict() for r in df.collect()]


def log(settings: Settings, feed: str) -> list[dict]:
    df = tables.read(
        get_spark(settings), tables.contract("ods_delivery_log", settings), settings=settings
    )
    return [r.asDict() for r in df.where(df.feed == feed).collect()]


def source_position(settings: Settings, table: str, key: str) -> tuple[str, list[str]]:
    """(updated_at, key) of the source's newest row, as a cursor spells them."""
    with connect_source_db(settings) as conn:
        updated, k = conn.execute(
            f"SELECT updated_at, {key} FROM {table} ORDER BY updated_at DESC, {key} DESC LIMIT 1"
        ).fetchone()
    return database._watermark_text(updated, ZoneInfo(settings.timezone)), [k]


def test_loader_keeps_what_a_typed_database_can_hold(payments: Settings) -> None:
    rows = [
        txn(1),
        txn(2, amount_fen="0", channel="paypal", payer_region_code="999999"),  # dirty, storable
        txn(3, amount_fen="¥12"),
        txn(4, amount_fen="１２"),  # full-width digits
        txn(5, txn_time="昨天"),
        txn(6, txn_id=""),
        txn(7, refund_of="T404404", status="refund"),  # refund of an unknown original
        txn(1, amount_fen="999"),  # the same key again later in the load: last one wins
    ]
    report = load_txns(payments, rows)
    assert (report.received, report.inserted, report.updated, report.unchanged) == (8, 3, 0, 1)
    assert [(r.column, r.value, r.reason) for r in report.rejected] == [
        ("amount_fen", "¥12", "not a whole number of fen"),
        ("amount_fen", "１２", "not a whole number of fen"),
        ("txn_time", "昨天", "not an ISO 8601 time"),
        ("txn_id", "", "missing key"),
    ]
    with connect_source_db(payments) as conn:
        stored = dict(conn.execute("SELECT txn_id, updated_at FROM pay_transactions").fetchall())
        assert conn.execute(
            "SELECT amount_fen, refund_of FROM pay_transactions WHERE txn_id = 'T000001'"
        ).fetchone() == (999, None)
        assert stored["T000001"].year != 1999  # the database stamps its own updated_at

    again = load_txns(payments, [txn(1, amount_fen="999"), txn(2, amount_fen="5")])
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 1)
    with connect_source_db(payments) as conn:
        after = dict(conn.execute("SELECT txn_id, updated_at FROM pay_transactions").fetchall())
        assert after["T000001"] == stored["T000001"]  # unchanged rows keep their updated_at
        assert after["T000002"] > stored["T000002"]
        refunds = payment_db.refund_transactions(conn, {"T000001": 300, "T000002": None})
        assert conn.execute(
            "SELECT refund_of, amount_fen, status, merchant_id FROM pay_transactions "
            "WHERE txn_id = ANY(%s) ORDER BY refund_of",
            [list(refunds.values())],
        ).fetchall() == [
            ("T000001", 300, "refund", "M00000001"),
            ("T000002", 5, "refund", "M00000002"),
        ]
        with pytest.raises(ValueError, match="T999999"):
            payment_db.refund_transactions(conn, {"T999999": None})


def test_incremental_pulls_bring_exactly_new_and_changed_rows(spark, payments: Settings) -> None:
    # 150 rows in one source transaction share one updated_at: pages of 64 split that tie.
    assert load_txns(payments, [txn(i) for i in range(1, 151)]).inserted == 150

    held_back = payments.model_copy(
        update={"source_db": payments.source_db.model_copy(update={"watermark_lag_seconds": 3600})}
    )
    assert pull_database(TXNS, settings=held_back) == []  # younger than the safety lag

    first = pull_database(TXNS, business_date=dt.date(2024, 11, 5), settings=payments)
    assert [(r.delivered, r.loaded, r.quarantined) for r in first] == [
        (64, 64, 0),
        (64, 64, 0),
        (22, 22, 0),
    ]
    rows = ods(payments, TXNS)
    assert sorted(r["txn_id"] for r in rows) == [f"T{i:06d}" for i in range(1, 151)]
    one = next(r for r in rows if r["txn_id"] == "T000061")
    assert (one["txn_time"], one["amount_fen"], one["refund_of"], one["channel"]) == (
        "2024-11-05T10:01:01+08:00",
        "161",
        None,
        "wechat",
    )
    assert one["updated_at"].endswith("+08:00")
    assert {r["_business_date"] for r in rows} == {dt.date(2024, 11, 5)}
    newest = source_position(payments, TXNS, "txn_id")
    assert newest[1] == ["T000150"]  # the last of the tie, in key order
    assert staging.last_cursor(TXNS, payments) == {"updated_at": newest[0], "key": newest[1]}
    assert {r.source for r in first} == {
        f"postgresql://127.0.0.1:{payments.source_db.port}/payments/pay_transactions"
    }

    # Late: two reversals, a full and a partial refund, and one new payment.
    with connect_source_db(payments) as conn:
        assert payment_db.reverse_transactions(conn, ["T000003", "T000100"]) == 2
        refunds = payment_db.refund_transactions(conn, {"T000010": None, "T000020": 50})
    load_txns(payments, [txn(151)])
    second = pull_database(TXNS, settings=payments)
    assert [r.delivered for r in second] == [5]
    rows = ods(payments, TXNS)
    late = {r["txn_id"]: r for r in rows if r["_delivery_id"] == second[0].delivery_id}
    assert set(late) == {"T000003", "T000100", "T000151", *refunds.values()}
    assert late["T000003"]["status"] == late["T000100"]["status"] == "reversed"
    partial = late[refunds["T000020"]]
    assert (partial["status"], partial["refund_of"], partial["amount_fen"]) == (
        "refund",
        "T000020",
        "50",
    )
    assert late[refunds["T000010"]]["amount_fen"] == "110"

    # Nothing new: no delivery, no ODS row, no log row.
    assert len(rows) == 155
    assert pull_database(TXNS, settings=payments) == []
    assert len(ods(payments, TXNS)) == 155
    assert [r["channel"] for r in log(payments, TXNS)] == ["database"] * 4


def test_a_crash_then_a_rerun_converges_without_pulling_again(
    spark, payments: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_txns(payments, [txn(i) for i in range(1, 101)])
    real_ingest, real_stage = staging.ingest_batch, staging.stage

    def crash(batch: staging.StagedBatch, settings: Settings | None = None):
        raise KeyboardInterrupt("power cut after staging, before ingest")

    monkeypatch.setattr(staging, "ingest_batch", crash)
    with pytest.raises(KeyboardInterrupt):
        pull_database(TXNS, settings=payments)
    staged = staging.pending(TXNS, payments)
    assert [json.loads(line)["txn_id"] for line in staged[0].path.read_text().splitlines()][
        -1
    ] == "T000064"
    assert len(staged) == 1

    pulled: list[dict] = []

    def spy_stage(feed: str, records, **kw):
        pulled.append(kw["cursor"])
        return real_stage(feed, records, **kw)

    monkeypatch.setattr(staging, "ingest_batch", real_ingest)
    monkeypatch.setattr(staging, "stage", spy_stage)
    rerun = pull_database(TXNS, settings=payments)
    # The staged page is ingested as it was; only the next page is pulled from the source.
    assert [r.delivered for r in rerun] == [64, 36]
    assert [c["key"] for c in pulled] == [["T000100"]]
    assert staging.pending(TXNS, payments) == []
    assert Counter(r["txn_id"] for r in ods(payments, TXNS)) == {
        f"T{i:06d}": 1 for i in range(1, 101)
    }

    # A crash after the delivery committed but before its staged file was removed: the
    # rerun re-delivers that file, which changes nothing.
    load_txns(payments, [txn(i) for i in range(101, 111)])

    def commit_then_crash(*args: Any, **kwargs: Any) -> NoReturn:
        ingest_file(*args, **kwargs)  # the delivery commits; its staged file stays
        raise KeyboardInterrupt("power cut after the commit")

    monkeypatch.setattr(staging, "ingest_file", commit_then_crash)
    with pytest.raises(KeyboardInterrupt):
        pull_database(TXNS, settings=payments)
    monkeypatch.setattr(staging, "ingest_file", ingest_file)
    pulled.clear()
    again = pull_database(TXNS, settings=payments)
    assert [(r.delivered, r.already_ingested) for r in again] == [(10, True)]
    assert pulled == []
    assert len(ods(payments, TXNS)) == 110
    assert len(log(payments, TXNS)) == 3
    assert staging.last_cursor(TXNS, payments)["key"] == ["T000110"]


def test_full_reload_redelivers_everything_once(
    spark, payments: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = payments.model_copy(
        update={"source_db": payments.source_db.model_copy(update={"batch_rows": 16})}
    )
    load_txns(small, [txn(i) for i in range(1, 41)])
    assert [r.delivered for r in pull_database(TXNS, settings=small)] == [16, 16, 8]

    # The reload is cut short after staging its second page; a plain pull finishes it.
    real_ingest = staging.ingest_batch
    calls = 0

    def crash_on_second(batch: staging.StagedBatch, settings: Settings | None = None):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt("power cut during the reload")
        return real_ingest(batch, settings)

    monkeypatch.setattr(staging, "ingest_batch", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        pull_database(TXNS, full=True, settings=small)
    monkeypatch.setattr(staging, "ingest_batch", real_ingest)
    finished = pull_database(TXNS, settings=small)
    assert [(r.delivered, r.already_ingested) for r in finished] == [(16, False), (8, False)]

    counts = Counter(r["txn_id"] for r in ods(small, TXNS))
    assert counts == {f"T{i:06d}": 2 for i in range(1, 41)}  # the first pull, then the reload
    cursors = [json.loads(r["cursor"]) for r in log(small, TXNS)]
    assert sum("reload" in c for c in cursors) == 3
    assert len({r["delivery_id"] for r in log(small, TXNS)}) == 6

    # After the reload, pulls continue from its end.
    assert pull_database(TXNS, settings=small) == []
    with connect_source_db(small) as conn:
        payment_db.reverse_transactions(conn, ["T000007"])
    late = pull_database(TXNS, settings=small)
    assert [r.delivered for r in late] == [1]
    assert staging.last_cursor(TXNS, small)["key"] == ["T000007"]


def test_settlements_pull_on_their_composite_key(spark, payments: Settings) -> None:
    rows = [
        {
            "merchant_id": f"M{m:08d}",
            "settle_date": f"2024-11-0{d}",
            "gross_fen": str(10_000 * m + d),
            "fee_fen": str(60 * m),
            "net_fen": str(10_000 * m + d - 60 * m),
            "settle_bank_code": "ICBC",
            "settle_bank_local": "Y" if m % 2 else "N",
        }
        for m in range(1, 11)
        for d in (5, 6, 7)
    ]
    rows[0] |= {"fee_fen": "-60", "settle_bank_local": "X"}  # dirty, yet a database holds it
    rows[1] |= {"gross_fen": "1,234"}
    with connect_source_db(payments) as conn:
        report = payment_db.load_settlements(conn, rows)
    assert (report.inserted, [r.column for r in report.rejected]) == (29, ["gross_fen"])

    small = payments.model_copy(
        update={"source_db": payments.source_db.model_copy(update={"batch_rows": 16})}
    )
    assert [r.delivered for r in pull_database(SETTLEMENTS, settings=small)] == [16, 13]
    pulled = ods(small, SETTLEMENTS)
    assert sorted((r["merchant_id"], r["settle_date"]) for r in pulled) == sorted(
        (r["merchant_id"], r["settle_date"]) for r in rows if r is not rows[1]
    )
    first = next(
        r for r in pulled if r["merchant_id"] == "M00000001" and r["settle_date"].endswith("5")
    )
    assert (first["fee_fen"], first["settle_bank_local"], first["net_fen"]) == ("-60", "X", "9945")
    assert "updated_at" not in first  # not a column of this feed: the watermark only
    assert staging.last_cursor(SETTLEMENTS, small)["key"] == ["M00000010", "2024-11-07"]

    with connect_source_db(small) as conn:  # a restated settlement
        changed = payment_db.update_rows(
            conn, payment_db.SETTLEMENTS, {("M00000004", "2024-11-06"): {"fee_fen": "0"}}
        )
    assert changed == 1
    late = pull_database(SETTLEMENTS, settings=small)
    assert [r.delivered for r in late] == [1]
    assert staging.last_cursor(SETTLEMENTS, small)["key"] == ["M00000004", "2024-11-06"]


def test_the_server_is_ours_loopback_only_and_stopped_by_its_pid() -> None:
    with running_source_db() as settings:
        pid = start_source_db(settings).pid
        assert pid is not None
        assert start_source_db(settings).pid == pid  # idempotent: the same postmaster
        data = data_dir(settings)
        assert data.is_relative_to(settings.var_dir) and data.stat().st_mode & 0o777 == 0o700
        with connect_source_db(settings) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == (False,)
        wrong = settings.source_db.model_copy(update={"password": SecretStr("wrong")})
        with pytest.raises(psycopg.OperationalError, match="password"):
            connect_source_db(settings.model_copy(update={"source_db": wrong})).close()

        pids = server_pids(pid)
        assert stop_source_db(settings)
        assert not [p for p in pids if alive(p)]
        assert not Path(processes.service(SERVICE, settings).pid_file).exists()
        assert stop_source_db(settings) is False
        restarted = start_source_db(settings)  # the cluster survives a restart
        assert restarted.pid not in (None, pid)
