"""A build normalizes only what its deliveries affect, and its DWD equals a rebuild from all of ODS.

Three days of payment and order deliveries hold every relation that reaches back in time: a
refund booking on its original's day, a re-delivered transaction, a refund that arrives before
its original, a transaction that arrives before its merchant, a merchant that moves district,
refunds that together exceed their original, and a transaction and an order whose
re-deliveries move them to another day. Built day by day, the DWD tables and the quarantine
must equal one build of all days; and a day's build must read only the lines related to its
deliveries: a merchant's new registry version only its transactions from the version's day on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc
import pyspark.sql.functions as F
import pytest
from pyspark.sql import Column

from citylake.settings import Settings
from pipelines import tables
from pipelines.build import (
    FEED_FACTS,
    TXN_AT,
    TXN_KEYS,
    BuildResult,
    _ods,
    build_dwd,
    fact_keys,
    refresh_fact,
)
from pipelines.dwd import affected
from pipelines.dwd import line_keys as line_keys_module
from pipelines.dwd.affected import affected_rows, versions_since
from pipelines.dwd.line_keys import INDEX, LINE, line_keys, rules_fingerprint
from pipelines.ingest import ingest_file
from pipelines.normalize import normalize
from tests.payment_files import MERCHANT_HEADER, TXN_HEADER, merchant, txn, write

pytestmark = pytest.mark.spark

D5, D6, D7 = (dt.date(2024, 11, d) for d in (5, 6, 7))
ORDER_HEADER = [c.name for c in tables.contract("ods_merchant_orders").feed_columns]


def _order(oid: str, time: str, gmv: int, updated: str, status: str = "paid") -> list[str]:
    return [oid, "M1", "meituan", time, str(gmv), "0", status, updated]


REGISTRY = {
    D5: [merchant("M1", "431102"), merchant("M2", "431103", "retail")],
    # M3 arrives after its sale of the 5th; M1 moves district at noon on the 6th.
    D7: [
        merchant("M3", "431103", updated="2024-11-07T08:00:00+08:00"),
        merchant("M1", "431103", updated="2024-11-06T12:00:00+08:00"),
    ],
}
TRANSACTIONS = {
    D5: [
        txn("T1", "M1", "2024-11-05T12:00:00+08:00", 1000),
        txn("T6", "M1", "2024-11-05T10:00:00+08:00", 250),  # before M1's move: not touched by it
        txn("T2", "M2", "2024-11-05T13:00:00+08:00", 500),
        txn("T9", "M3", "2024-11-05T14:00:00+08:00", 700),  # merchant unknown until the 7th
        txn("RX", "M1", "2024-11-05T15:00:00+08:00", 200, status="refund", refund_of="T8"),
        txn("T7", "M2", "2024-11-05T16:00:00+08:00", 350),
    ],
    D6: [
        txn("T3", "M1", "2024-11-06T18:00:00+08:00", 800),  # after M1 moved
        txn("R1", "M1", "2024-11-06T10:00:00+08:00", 300, status="refund", refund_of="T1"),
        txn("T2", "M2", "2024-11-05T13:00:00+08:00", 600, updated="2024-11-06T09:00:00+08:00"),
        txn("T4", "M2", "2024-11-06T11:00:00+08:00", 400),
        # T7's corrected time moves it to the 6th: its row must leave the 5th.
        txn("T7", "M2", "2024-11-06T08:00:00+08:00", 350, updated="2024-11-06T09:00:00+08:00"),
    ],
    D7: [
        txn("T8", "M1", "2024-11-05T09:00:00+08:00", 900),  # RX's original, two days late
        txn("T5", "M2", "2024-11-07T10:00:00+08:00", 1000),
        txn("R2", "M2", "2024-11-07T11:00:00+08:00", 100, status="refund", refund_of="T4"),
        txn("R3", "M1", "2024-11-07T12:00:00+08:00", 800, status="refund", refund_of="T1"),
    ],
}
ORDERS = {
    D5: [
        _order("O1", "2024-11-05T10:00:00+08:00", 5000, "2024-11-05T10:00:00+08:00"),
        _order("O2", "2024-11-05T11:00:00+08:00", 3000, "2024-11-05T11:00:00+08:00"),
    ],
    # O1's corrected time moves it to the 6th: its row must leave the 5th.
    D6: [_order("O1", "2024-11-06T09:00:00+08:00", 5000, "2024-11-06T09:30:00+08:00")],
    D7: [_order("O3", "2024-11-07T10:00:00+08:00", 100, "2024-11-07T10:00:00+08:00")],
}


def _deliver(lake: Settings, day: dt.date) -> None:
    landing = Path(lake.landing)
    for feed, header, rows in (
        ("merchant_registry", MERCHANT_HEADER, REGISTRY.get(day)),
        ("pay_transactions", TXN_HEADER, TRANSACTIONS.get(day)),
        ("merchant_orders", ORDER_HEADER, ORDERS.get(day)),
    ):
        if rows:
            ingest_file(write(landing, feed, str(day), f"{feed}.csv", header, rows), feed)


def _build(lake: Settings, start: dt.date | None, end: dt.date | None) -> BuildResult:
    result = build_dwd(start, end, settings=lake)
    dwd, builder = FEED_FACTS["ods_merchant_orders"]
    refresh_fact("ods_merchant_orders", dwd, builder, start, end, result, lake)
    return result


def _state(spark, lake: Settings) -> dict[str, list[tuple]]:
    state = {}
    for name in ("dwd_pay_transaction", "dwd_merchant_order", "dwd_merchant", "dwd_quarantine"):
        rows = tables.read(spark, tables.contract(name, lake), settings=lake)
        rows = rows.drop("quarantined_at")  # when a line was quarantined, not what
        state[name] = sorted(tuple(map(str, r)) for r in rows.collect())
    return state


def test_day_by_day_builds_equal_one_build_of_every_day(
    spark, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    days: dict[dt.date, set[dt.date]] = {}
    for day in (D5, D6, D7):
        _deliver(lake, day)
        days[day] = _build(lake, day, day).days
    # The refund R1 and the re-delivered T2 rewrite the 5th; T8, RX and T9 do on the 7th,
    # and so does M1's move for T3 on the 6th.
    assert days == {D5: set(), D6: {D5}, D7: {D5, D6}}
    incremental = _state(spark, lake)

    # Every day from all of ODS, written as a range too big for the driver is: by Spark's own
    # writer, where the days above went through the driver to delta-rs.
    by_spark: list[str] = []
    replace = tables.replace

    def spied(df, table, *args, **kwargs):  # type: ignore[no-untyped-def]
        by_spark.append(table.name)
        return replace(df, table, *args, **kwargs)

    monkeypatch.setattr(affected, "DRIVER_ROWS", 0)
    monkeypatch.setattr(tables, "replace", spied)
    _build(lake, None, None)
    assert {"dwd_pay_transaction", "dwd_merchant_order"} <= set(by_spark)
    assert _state(spark, lake) == incremental

    txns = {r[0]: r for r in incremental["dwd_pay_transaction"]}
    assert "R3" not in txns  # with R1 it refunds more than T1 was
    assert txns["RX"][11] == str(D5) and txns["T9"][12] == "431103"  # booked, and found
    assert txns["T3"][12] == "431103"  # M1's district from the noon of the 6th
    assert txns["T6"][12] == "431102"  # and before it
    assert txns["T7"][11] == str(D6)  # and no row of it left on the 5th: the states are equal
    orders = {r[0]: r[8] for r in incremental["dwd_merchant_order"]}
    assert orders == {"O1": str(D6), "O2": str(D5), "O3": str(D7)}
    reasons = sorted(r[6] for r in incremental["dwd_quarantine"] if r[0] == "pay_transactions")
    assert reasons == ["refund_exceeds_original"]  # RX's and T9's quarantine of the 5th is gone


def _affected(spark, lake: Settings, day: dt.date) -> tuple[list[tuple], list[str]]:
    """After the three days' deliveries: the merchant seeds of `day`'s registry delivery, and
    the transaction ids a build of `day` reads (one per line), as the build finds them."""
    for each in (D5, D6, D7):
        _deliver(lake, each)
    versions = {name: tables.version(spark, tables.contract(name, lake), lake) for name in (
        "ods_pay_transactions", "ods_merchant_registry")}  # fmt: skip
    registry = _ods(spark, "ods_merchant_registry", versions, lake)
    merchants = tables.contract("dwd_merchant", lake)
    on_day = registry.where(F.col("_business_date") == day)
    changed = versions_since(
        on_day, normalize(registry, merchants), merchants, "merchant_id", "merchant"
    )
    rows = affected_rows(
        _ods(spark, "ods_pay_transactions", versions, lake),
        "pay_transactions",
        tables.contract("dwd_pay_transaction", lake),
        TXN_KEYS,
        days=(day, day),
        follow=frozenset({"txn"}),
        seeds=changed,
        at=TXN_AT,
        settings=lake,
    )
    seeds = sorted(tuple(r) for r in changed.collect())
    return seeds, sorted(r.txn_id for r in rows.select("txn_id", *LINE).collect())


def test_a_day_reads_only_the_lines_its_deliveries_relate_to(spark, lake: Settings) -> None:
    seeds, ids = _affected(spark, lake, D6)
    # The 6th's five lines, T1 (R1's original), the first versions of T2 and T7, and the other
    # refunds of T1 (R3) and T4 (R2); no merchant changed on the 6th, so nothing else.
    assert seeds == []
    assert ids == ["R1", "R2", "R3", "T1", "T2", "T2", "T3", "T4", "T7", "T7"]


def test_a_merchant_version_affects_its_transactions_from_its_day_on(spark, lake: Settings) -> None:
    seeds, ids = _affected(spark, lake, D7)
    # M3's first version holds from the beginning of time; M1's move from the 6th.
    assert seeds == [("merchant\x1fM1", D6), ("merchant\x1fM3", None)]
    # The 7th's four lines; RX (T8's refund), T4 (R2's original), T1 and R1 (R3's original and
    # its other refund); T9 of M3; T3 of M1 after its move. Not T6, M1's sale of the 5th, nor
    # T2 of M2: the 7th's build leaves their day alone.
    assert ids == ["R1", "R2", "R3", "RX", "T1", "T3", "T4", "T5", "T8", "T9"]


def test_a_settled_probe_reads_the_same_lines_on_the_driver_as_by_spark(
    spark, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order's lines relate by its id alone, so one pass settles the probe: on the driver
    for a small index, by Spark past `DRIVER_INDEX_ROWS`. Both read the same rows."""
    for day in (D5, D6, D7):
        _deliver(lake, day)
    name = "ods_merchant_orders"
    ods = _ods(spark, name, {name: tables.version(spark, tables.contract(name, lake), lake)}, lake)
    table, keys, at = fact_keys(name, lake)
    on_driver = []
    probe = affected._settled_on_driver

    def spied(*args, **kwargs):  # type: ignore[no-untyped-def]
        on_driver.append(probe(*args, **kwargs))
        return on_driver[-1]

    def read() -> list[tuple]:
        rows = affected_rows(
            ods, "merchant_orders", table, keys, days=(D6, D6), follow=frozenset(keys.values()),
            at=at, settings=lake,
        )  # fmt: skip
        return sorted(tuple(r) for r in rows.select("order_id", *LINE).collect())

    monkeypatch.setattr(affected, "_settled_on_driver", spied)
    driver = read()
    assert [line.num_rows for line in on_driver] == [1]  # O1's first version, of the 5th
    monkeypatch.setattr(affected, "DRIVER_INDEX_ROWS", -1)
    assert read() == driver
    assert len(on_driver) == 1  # the second read was Spark's
    assert [r[0] for r in driver] == ["O1", "O1"]  # the 6th's line of O1 and the 5th's


def _coarse_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys hashed into three values: nearly every probe of the index meets other keys."""

    def coarse(key: Column) -> Column:
        return F.xxhash64(key) % 3

    monkeypatch.setattr(line_keys_module, "key_hash", coarse)
    monkeypatch.setattr(affected, "key_hash", coarse)


def test_lines_whose_key_shares_a_hash_are_found_too(
    spark, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _coarse_hash(monkeypatch)
    _, ids = _affected(spark, lake, D6)
    exact = ["R1", "R2", "R3", "T1", "T2", "T2", "T3", "T4", "T7", "T7"]
    assert set(exact) < set(ids)  # the related lines, and lines met by a shared hash


def test_day_by_day_builds_are_exact_when_keys_share_hashes(
    spark, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines a shared hash brings are followed like related ones and rebuilt: the days
    come out as one build of all of ODS makes them (which reads no index)."""
    _coarse_hash(monkeypatch)
    for day in (D5, D6, D7):
        _deliver(lake, day)
        _build(lake, day, day)
    incremental = _state(spark, lake)
    _build(lake, None, None)
    assert _state(spark, lake) == incremental


def test_a_range_of_every_delivery_affects_every_row_without_the_index(
    spark, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for each in (D5, D6, D7):
        _deliver(lake, each)
    name = "ods_pay_transactions"
    ods = _ods(spark, name, {name: tables.version(spark, tables.contract(name, lake), lake)}, lake)

    def unread(*_: object, **__: object) -> None:
        raise AssertionError("the line index was read")

    monkeypatch.setattr(affected, "line_keys", unread)

    def lines(first: dt.date, last: dt.date) -> list[tuple]:
        rows = affected_rows(
            ods, "pay_transactions", tables.contract("dwd_pay_transaction", lake), TXN_KEYS,
            days=(first, last), follow=frozenset({"txn"}), at=TXN_AT, settings=lake,
        )  # fmt: skip
        return sorted(tuple(r) for r in rows.select(*LINE).collect())

    assert lines(D5, D7) == sorted(tuple(r) for r in ods.select(*LINE).collect())
    with pytest.raises(AssertionError, match="line index"):  # the 5th's lines are outside
        lines(D6, D7)


def _indexed(lake: Settings) -> dict[str, set[str]]:
    """The index's deliveries, by key-rule fingerprint, read from its Delta log."""
    index = tables.ensure_native(tables.contract(INDEX, lake), lake)
    held: dict[str, set[str]] = {}
    for part in index.partitions(partition_filters=[("feed", "=", "pay_transactions")]):
        held.setdefault(part["rules"], set()).add(part["delivery_id"])
    return held


def test_each_delivery_is_indexed_once_and_again_when_the_key_rules_change(
    spark, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tables.contract("dwd_pay_transaction", lake)
    ods = tables.contract("ods_pay_transactions", lake)
    log = tables.contract("ods_delivery_log", lake)

    def index() -> list[tuple]:
        rows = tables.read(spark, ods, settings=lake)
        keys = line_keys(rows, "pay_transactions", table, TXN_KEYS, lake, TXN_AT)
        # Each row is probed by its key's hash (pipelines/dwd/affected.py).
        assert keys.where(F.col("_key_hash") != F.xxhash64("_key")).isEmpty()
        keys = keys.select(*LINE, "_business_date", "_key", "_event_date", "_keys")
        return sorted((*map(str, r[:5]), tuple(sorted(r[5]))) for r in keys.collect())

    def deliveries() -> set[str]:
        rows = tables.read_native(log, pc.field("feed") == "pay_transactions", lake)
        return set(rows["delivery_id"].to_pylist())

    for day in (D5, D6):
        _deliver(lake, day)
    first = index()
    rules = rules_fingerprint(table, TXN_KEYS, TXN_AT, lake.timezone)
    assert _indexed(lake) == {rules: deliveries()}
    # Another time zone dates the lines otherwise: an index of its own.
    assert rules_fingerprint(table, TXN_KEYS, TXN_AT, "UTC") != rules
    # T1 of the 5th carries its id and its merchant; R1 of the 6th its id, T1 and M1.
    keys = {r[3].replace("\x1f", ":") for r in first}
    assert {"txn:T1", "merchant:M1", "txn:R1"} <= keys and len(first) == 6 * 2 + 5 * 2 + 2
    # Each row brings all the keys of its line: R1's three, whichever it was found by.
    r1 = [r for r in first if (r[0], r[1]) in {(r[0], r[1]) for r in first if "R1" in r[3]}]
    assert len(r1) == 3 and {r[5] for r in r1} == {("merchant\x1fM1", "txn\x1fR1", "txn\x1fT1")}
    # Each line dated by its txn_time, as normalization parses it (R1 by its own, not T1's).
    dated = {(r[3].split("\x1f")[1], r[4]) for r in first}
    assert {("T1", "2024-11-05"), ("R1", "2024-11-06"), ("T2", "2024-11-05")} <= dated

    version = tables.version(spark, tables.contract(INDEX, lake), lake)
    assert index() == first  # nothing new delivered: the index is read, not written
    assert tables.version(spark, tables.contract(INDEX, lake), lake) == version

    _deliver(lake, D7)
    later = index()  # the 7th's delivery only is parsed, and appended
    assert _indexed(lake) == {rules: deliveries()} and set(first) < set(later)

    # Other key rules (a changed contract or parser): the feed is indexed afresh, alone.
    monkeypatch.setattr("pipelines.dwd.line_keys.rules_fingerprint", lambda *_: "other")
    assert index() == later
    assert _indexed(lake) == {"other": deliveries()}


def _facts(spark, table, rows: list[dict]):  # type: ignore[no-untyped-def]
    """dwd_pay_transaction rows: each `rows` entry's columns over a plain sale's."""
    at = dt.datetime(2024, 11, 5, 12, tzinfo=dt.UTC)
    plain = {
        "merchant_id": "M1", "txn_time": at, "amount_fen": 100, "channel": "wechat",
        "status": "success", "refund_of": None, "payer_region_code": None,
        "terminal_id": None, "updated_at": at, "biz_date": D5, "booked_date": D5,
        "district_code": "431102", "sector": "catering", "booked_channel": "wechat",
        "gross_fen": 100, "refund_fen": 0, "counts_as_txn": True, "_delivery_id": "d1",
        "_source_file": "f.csv", "_source_line": 1,
    }  # fmt: skip
    filled = [plain | row for row in rows]
    return tables.from_columns(
        spark, {c.name: [r[c.name] for r in filled] for c in table.columns}, table
    )


def test_a_rewrite_commits_only_the_rows_that_changed(spark, lake: Settings) -> None:
    """A late refund appends its row to its original's day; the same rows again commit
    nothing; a changed row is updated in place, a moved one leaves its old day, a key with no
    row any more leaves the table: the partitions those keys touch are returned each time, with
    the new rows each holds."""
    table = tables.contract("dwd_pay_transaction", lake)
    a, b, c = {"txn_id": "A"}, {"txn_id": "B"}, {"txn_id": "C", "booked_date": D6}
    rows = _facts(spark, table, [a, b, c])
    assert affected.replace_keys(rows, rows, table, lake) == {D5: 2, D6: 1}
    first = tables.ensure_native(table, lake).version()

    assert affected.replace_keys(rows, rows, table, lake) == {D5: 2, D6: 1}
    assert tables.ensure_native(table, lake).version() == first  # nothing differs: no commit

    before = set(tables.ensure_native(table, lake).file_uris())
    refund = _facts(spark, table, [{"txn_id": "R", "status": "refund", "refund_of": "A"}])
    assert affected.replace_keys(refund, refund, table, lake) == {D5: 1}
    native = tables.ensure_native(table, lake)
    assert native.history(1)[0]["operationParameters"]["mode"] == "Append"
    (refund_file,) = set(native.file_uris()) - before

    changed = _facts(spark, table, [a | {"district_code": "431103"}, b | {"booked_date": D6}])
    keys = _facts(spark, table, [a, b, c])  # C is affected but has no row now (quarantined)
    # A stays on D5, B moves to D6 (and leaves D5), C leaves D6: one row on each day now.
    assert affected.replace_keys(changed, keys, table, lake) == {D5: 1, D6: 1}
    native = tables.ensure_native(table, lake)
    assert native.history(1)[0]["operation"] == "MERGE"
    assert refund_file in native.file_uris()  # it holds no changed row: not rewritten
    held = tables.read_native(table, settings=lake).to_pylist()
    assert sorted((r["txn_id"], r["booked_date"], r["district_code"]) for r in held) == [
        ("A", D5, "431103"),
        ("B", D6, "431102"),
        ("R", D5, "431102"),
    ]


def test_a_keys_old_rows_are_read_from_the_days_its_lines_book_on(spark, lake: Settings) -> None:
    """Every line's date counts, in the city's time zone: a line rejected now (its row may
    have been written before), not one without a time (it never booked a row)."""
    table = tables.contract("dwd_pay_transaction", lake)
    east8 = dt.timezone(dt.timedelta(hours=8))
    lines = spark.createDataFrame(
        [
            ("T1", dt.datetime(2024, 11, 5, 12, tzinfo=east8), None),
            ("T1", dt.datetime(2024, 11, 6, 0, 30, tzinfo=east8), "bad_amount"),  # the 5th in UTC
            ("R1", dt.datetime(2024, 11, 7, 9, tzinfo=east8), None),
            ("T2", None, "bad_timestamp"),
        ],
        "txn_id string, txn_time timestamp, _reject string",
    )
    assert affected.booked_partitions(lines, table, "txn_time") == [D5, D6, D7]
    # A table partitioned by a column of its key finds it on the lines themselves.
    settlements = tables.contract("dwd_pay_settlement", lake)
    paid = spark.createDataFrame([("M1", D6), ("M2", None)], "merchant_id string, settle_date date")
    assert affected.booked_partitions(paid, settlements, None) == [D6]
    with pytest.raises(ValueError, match="name the time its rows book on"):
        affected.booked_partitions(lines, table, None)
    # A row booked off every such day: the rule named the wrong time, and nothing is written.
    moved = _facts(spark, table, [{"txn_id": "C", "booked_date": D6}])  # its time is of the 5th
    with pytest.raises(ValueError, match=r"rows book on \['2024-11-06'\]"):
        affected.replace_keys(moved, moved, table, lake, "txn_time")
    assert not tables.ensure_native(table, lake).file_uris()
