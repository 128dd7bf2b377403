"""The paths from ODS to the cockpit: DWD -> gate -> DWS -> ADS, for a range of days.

Every domain's DWD is one unit: payment (merchants, then transactions), each government,
settlement and order feed's facts, and fuel supervision (stations, pump sales, deliveries and
tank readings). The units run side by side (pipelines/units.py; `settings.units_at_once`), each
after the units whose tables it reads; then the conformed dimensions, and one SQLMesh run
builds DWS and ADS for the range and the days before it that late rows touched. DWD is built
for the rows that the range's deliveries affect (pipelines/dwd/affected.py), not for all of ODS.

Gates: ODS→DWD validates the normalized candidate rows before anything is written to DWD (too
many contract breaks in the deliveries of the range block the feed); DWD→DWS validates the DWD
tables against their contracts (column checks, and cross checks such as a settlement's merchant
existing) before DWS and ADS are rebuilt. Each check has its policy
(the contract's ``gate_policy``): a failed `warn` check is recorded, a failed `quarantine`
check moves its rows into dwd_quarantine and the rest goes on, a failed `block` check holds its
domain's tables (payment's transactions alone when the merchants passed) and nothing
downstream of them changes, while the other domains go on; the build then raises
``BuildBlocked`` (a ``GateBlocked``) naming every block.

Every step reads ODS at one pinned Delta version, so a build is a pure function of those
versions; the versions are written on each ADS row for time-travel reproduction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import pyarrow.compute as pc
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from citylake.settings import Settings, get_settings
from citylake.spark import get_spark
from pipelines import tables
from pipelines.cached import cached, releasing
from pipelines.dwd.affected import (
    affected_rows,
    replace_keys,
    replace_quarantine,
    versions_since,
)
from pipelines.dwd.dimensions import build_district, build_industry, build_mcc
from pipelines.dwd.enterprise import build_enterprise
from pipelines.dwd.feed import write_feed_dimension
from pipelines.dwd.feed_delivery import DELIVERY_LOG, write_feed_deliveries
from pipelines.dwd.fuel import BOOKS_ON as FUEL_BOOKS_ON
from pipelines.dwd.fuel import FUEL_FEEDS, FUEL_TABLES, build_fuel_facts, build_fuel_station
from pipelines.dwd.gate_outcome import kept_outcomes
from pipelines.dwd.line_keys import LINE, FeedKeys, index_deliveries
from pipelines.dwd.merchant import BINDING, binding_changes, build_merchant, rebound_days
from pipelines.dwd.order import BOOKS_ON as ORDER_BOOKS_ON
from pipelines.dwd.order import build_merchant_order
from pipelines.dwd.pay_transaction import BOOKS_ON as TXN_BOOKS_ON
from pipelines.dwd.pay_transaction import build_pay_transaction
from pipelines.dwd.rows import quarantine_rows
from pipelines.dwd.settlement import build_settlement
from pipelines.dwd.tax import build_social_insurance, build_tax_monthly
from pipelines.modeling.runner import build_models, day_runs, month_of, run_days
from pipelines.normalize import normalize, reject
from pipelines.tables import date_range_predicate
from pipelines.units import Unit, run_units
from quality.cross_checks import cross_check_results
from quality.gate import GateBlocked, GateResult, enforce, enforce_share
from quality.suites import Check, contract_checks, reject_rate_name
from warehouse_layers.contract import TableContract, input_roots

PAYMENT_INPUTS = ("ods_merchant_registry", "ods_pay_transactions")
PAYMENT_DWD = ("dwd_pay_transaction",)
PAYMENT_BLOCKS = ("ods_pay_transactions", *PAYMENT_DWD)  # the payment gates past the merchants'
PAYMENT, FUEL = "payment DWD", "fuel DWD"  # the labels of their build units
PAYMENT_UNIT = (*PAYMENT_DWD, "dwd_merchant")  # the merchants, then the transactions on them
FUEL_STATION = "dwd_fuel_station"
DWD_STEP = "DWD units"  # the step of `BuildResult.seconds` that `unit_seconds` divides
FUEL_DWD = ("dwd_fuel_sale", "dwd_fuel_delivery", "dwd_tank_reading")


@dataclass
class BuildResult:
    start: dt.date | None
    end: dt.date | None
    input_versions: dict[str, int]
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows written in the range
    quarantined: dict[str, int] = field(default_factory=dict)  # feed -> rows in dwd_quarantine
    gates: list[GateResult] = field(default_factory=list)
    days: set[dt.date] = field(default_factory=set)  # days outside [start, end] rebuilt too
    # DWD table -> days its rows changed on beyond those (a superseded tax period's month, the
    # orders a merchant's new uscc rebinds): restated for that table alone (build_models)
    restated: dict[str, set[dt.date]] = field(default_factory=dict)
    ads_path: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time, in order
    unit_seconds: dict[str, float] = field(default_factory=dict)  # DWD unit -> its wall time


def pin_inputs(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """The current Delta version of every feed's ODS table: what this build reads."""
    return {
        name: tables.version(spark, table, settings)
        for name, table in tables.contracts(settings).items()
        if table.feed is not None
    }


def _ods(spark: SparkSession, name: str, versions: dict[str, int], settings: Settings) -> DataFrame:
    """ODS rows of committed deliveries only, at the pinned version.

    A delivery is three appends with its log row last; rows of a delivery whose log row is not
    there yet (ingestion crashed or still runs) are invisible until the rerun commits it, so a
    delivery enters the warehouse all at once or not at all.
    """
    table = tables.contract(name, settings)
    assert table.feed is not None
    rows = tables.read(spark, table, versions[name], settings)
    # The feed's committed delivery ids as a literal list, read without Spark: a broadcast join
    # with the log cost a Spark read of it and a broadcast job in every query of the build.
    log = tables.contract("ods_delivery_log", settings)
    committed = tables.read_native_current(log, pc.field("feed") == table.feed.name, settings)
    ids = sorted(set(committed["delivery_id"].to_pylist()))
    return rows.where(tables.one_of(F.col("_delivery_id"), ids))


def _gate_rejects(
    normalized: DataFrame,
    ods_name: str,
    start: dt.date | None,
    end: dt.date | None,
    settings: Settings,
    result: BuildResult,
) -> None:
    ods = tables.contract(ods_name, settings)
    assert ods.feed is not None
    scope = normalized
    if start and end:
        scope = scope.where(date_range_predicate("_business_date", start, end))
    counts = {r[0]: r[1] for r in scope.groupBy(F.col("_reject.code")).count().collect()}
    result.gates.append(
        enforce_share(
            reject_rate_name(ods.feed.max_reject_rate),
            counts,
            ods.feed.max_reject_rate,
            gate="ods→dwd",
            table=ods_name,
            settings=settings,
        )
    )


# How transactions relate: a refund's `refund_of` and an original's `txn_id` are one namespace,
# and a changed merchant affects its transactions (its district and sector may move).
TXN_KEYS = {("txn_id",): "txn", ("refund_of",): "txn", ("merchant_id",): "merchant"}
# A transaction is booked with the merchant version valid at its time (pipelines/dwd/
# pay_transaction.py): a new version affects the transactions from its day on.
TXN_AT = "txn_time"
# A fact -> the time of its lines whose date is the partition a row books on (replace_keys reads
# a key's old rows from those days only). The others are partitioned by a column of their key.
BOOKS_ON = {
    "dwd_pay_transaction": TXN_BOOKS_ON,
    "dwd_merchant_order": ORDER_BOOKS_ON,
    **FUEL_BOOKS_ON,
}


def _delivered_in(rows: DataFrame, start: dt.date | None, end: dt.date | None) -> DataFrame:
    """The ODS rows that deliveries of [start, end] carry (all rows when the range is open)."""
    if start is None or end is None:
        return rows
    return rows.where(date_range_predicate("_business_date", start, end))


def build_dwd(
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    settings: Settings | None = None,
    versions: dict[str, int] | None = None,
) -> BuildResult:
    """ODS -> DWD for the range (None = every day present), behind the ODS→DWD gates; the
    merchants behind their DWD→DWS gate too (`gate_dwd` judges the transactions).

    The merchant dimension (small, SCD2) is rebuilt whole, and written and judged before the
    transactions are read: a gate that blocks the transactions leaves the merchants promoted
    (the settlements' backflow and the industries read them), while a block of the merchants
    stops here, before any transaction is booked against them. Transactions are rebuilt for
    the rows that the deliveries of the range affect (pipelines/dwd/affected.py); the days
    those rows book on are replaced where they changed and restated downstream, including days
    before the range that late refunds book back on (`result.days`).
    """
    settings = settings or get_settings()
    spark = get_spark(settings)
    versions = versions or pin_inputs(spark, settings)
    result = BuildResult(start, end, versions)
    dwd_merchant = tables.contract("dwd_merchant", settings)
    dwd_txn = tables.contract("dwd_pay_transaction", settings)

    # The frames cached here and inside the DWD builders are released when the block ends.
    with releasing():
        registry = _ods(spark, "ods_merchant_registry", versions, settings)
        merchants_norm = cached(normalize(registry, dwd_merchant))
        _gate_rejects(merchants_norm, "ods_merchant_registry", start, end, settings, result)
        merchants, merchant_rejects = build_merchant(merchants_norm, dwd_merchant)
        tables.replace_small(merchants, dwd_merchant, settings)
        replace_quarantine(merchant_rejects, merchants_norm, "merchant_registry", settings)
        result.rows["dwd_merchant"] = tables.count_rows(dwd_merchant, settings=settings)
        gate_dwd_table("dwd_merchant", result, settings)

        transactions = _ods(spark, "ods_pay_transactions", versions, settings)
        rows = transactions
        if start is not None and end is not None:
            changed = versions_since(
                _delivered_in(registry, start, end),
                merchants_norm,
                dwd_merchant,
                "merchant_id",
                "merchant",
            )
            rows = affected_rows(
                transactions,
                "pay_transactions",
                dwd_txn,
                TXN_KEYS,
                days=(start, end),
                follow=frozenset({"txn"}),
                seeds=changed,
                at=TXN_AT,
                settings=settings,
            )
        txn_norm = cached(normalize(rows, dwd_txn))
        _gate_rejects(txn_norm, "ods_pay_transactions", start, end, settings, result)

        merchants = tables.read(spark, dwd_merchant, settings=settings)
        facts, txn_rejects = build_pay_transaction(txn_norm, merchants, dwd_txn)
        facts = cached(facts)
        written = replace_keys(facts, txn_norm, dwd_txn, settings, BOOKS_ON[dwd_txn.name])
        replace_quarantine(txn_rejects, txn_norm, "pay_transactions", settings)
        days = list(written)
        if days and (start is None or end is None):
            start, end = result.start, result.end = days[0], days[-1]
        if start is not None and end is not None:
            result.days = {d for d in days if not start <= d <= end}
            result.rows["dwd_pay_transaction"] = sum(
                rows for day, rows in written.items() if start <= day <= end
            )
    result.quarantined = quarantined_by_feed(settings)
    return result


def quarantined_by_feed(settings: Settings) -> dict[str, int]:
    """The rows in dwd_quarantine per feed (read without Spark)."""
    quarantine = tables.contract("dwd_quarantine", settings)
    feeds = tables.read_native(quarantine, settings=settings, columns=["feed"])["feed"]
    return {r["values"]: r["counts"] for r in pc.value_counts(feeds).to_pylist()}


def gate_dwd(result: BuildResult, settings: Settings | None = None) -> None:
    """DWD→DWS gate: the transactions must satisfy their contracts where rebuilt (`build_dwd`
    judged the merchants before it booked them)."""
    settings = settings or get_settings()
    where = _range(result, "booked_date")
    if where and result.days:  # the original days that late refunds rewrote
        where = f"({where}) OR {tables.in_list('booked_date', sorted(result.days))}"
    gate_dwd_table("dwd_pay_transaction", result, settings, where)


def gate_dwd_table(
    name: str, result: BuildResult, settings: Settings, where: str | None = None
) -> None:
    """The DWD→DWS gate of one table: its rows (in `where`) must satisfy its contract.

    A failed check of policy `quarantine` moves its failing rows into dwd_quarantine and the
    rest goes on; a failed `block` check raises ``GateBlocked``. The contract's cross checks
    are judged on the same rows (a band's history reaches before them) and count alike."""
    spark = get_spark(settings)
    table = tables.contract(name, settings)
    current = tables.read(spark, table, settings=settings)
    rows = current.where(where) if where else current
    checks = contract_checks(table)

    def read(other: str) -> DataFrame:
        return tables.read(spark, tables.contract(other, settings), settings=settings)

    judged = cross_check_results(table, current, where, read)
    move = partial(quarantine_failing, table, checks, result, settings, where)
    result.gates.append(
        enforce(
            rows,
            checks,
            gate="dwd→dws",
            table=name,
            settings=settings,
            quarantine=move,
            judged=judged,
        )
    )


def quarantine_failing(
    table: TableContract,
    checks: list[Check],
    result: BuildResult,
    settings: Settings,
    where: str | None,
    outcome: GateResult,
) -> str:
    """Move the DWD rows (in `where`) that fail the `quarantine` checks of `outcome` into
    dwd_quarantine, reason `gate_<kind>` and the column, the first failed check of a row
    winning; returns what moved. The row's delivered line gives the quarantine its delivery,
    file and (masked) raw record, from ODS at the build's pinned version, so every delivered
    line stays in exactly one place: loaded + quarantined = delivered."""
    spark = get_spark(settings)
    failed = {c.check for c in outcome.quarantined}
    moving = [c for c in checks if c.name in failed and c.row is not None]
    reason = F.coalesce(
        *[
            F.when(c.row.failing(), reject(c.row.reason, c.row.column, F.col(c.row.column)))
            for c in moving
            if c.row is not None
        ]
    )
    with releasing():
        current = tables.read(spark, table, settings=settings)
        scope = current.where(where) if where else current
        bad = scope.select(*LINE, reason.alias("_reject")).where(F.col("_reject").isNotNull())
        bad = cached(bad)
        ods_name = table.upstream[0]  # the feed whose lines the rows carry (rules derive from it)
        feed = tables.contract(ods_name, settings).feed
        assert feed is not None
        delivered = _ods(spark, ods_name, result.input_versions, settings).join(
            bad.select(*LINE), LINE, "left_semi"
        )
        lines = normalize(delivered, table).select(*LINE, "_business_date", "_source_file", "_raw")
        rows = cached(quarantine_rows(lines.join(bad, LINE), feed=feed.name, table=table))
        moved = rows.count()
        replace_quarantine(rows, bad, feed.name, settings)  # in place of older rows of those lines
        # Then out of DWD (one commit): a crash in between leaves the line in both, never in none.
        promoted = scope.join(bad.select(*LINE), LINE, "left_anti")
        if table.partition_by:
            tables.replace(promoted, table, where=where, settings=settings)
        else:
            tables.replace_small(promoted, table, settings)
    result.quarantined[feed.name] = result.quarantined.get(feed.name, 0) + moved
    if table.name in result.rows:
        result.rows[table.name] -= moved
    counts = ", ".join(f"{c.check} {c.unexpected_count}" for c in outcome.quarantined)
    return f"quarantined {moved} rows into dwd_quarantine ({counts})"


def _range(result: BuildResult, column: str) -> str | None:
    if result.start is None or result.end is None:
        return None
    return date_range_predicate(column, result.start, result.end)


def build_dws_ads(
    result: BuildResult,
    settings: Settings | None = None,
    rebuilt: tuple[str, ...] = PAYMENT_DWD,
    held: tuple[str, ...] = (),
) -> BuildResult:
    """DWS and ADS downstream of the `rebuilt` DWD tables for [result.start, result.end],
    except those downstream of a `held` one (a gate blocked it)."""
    settings = settings or get_settings()
    if result.start is None or result.end is None:
        return result  # nothing in DWD yet
    span = (result.end - result.start).days + 1
    days = {result.start + dt.timedelta(days=i) for i in range(span)}
    runs = day_runs(days | result.days)
    touched = build_models(rebuilt, runs, result.input_versions, settings, held, result.restated)
    for name in touched:
        table = tables.contract(name, settings)
        where = None
        if "biz_date" in table.partition_by:
            where = (pc.field("biz_date") >= result.start) & (pc.field("biz_date") <= result.end)
        result.rows[name] = tables.count_rows(table, where, settings)
    result.ads_path = tables.table_path(tables.contract("ads_trade_daily", settings), settings)
    return result


def build_fuel_dwd(
    start: dt.date | None, end: dt.date | None, result: BuildResult, settings: Settings
) -> set[dt.date] | None:
    """Fuel supervision's DWD behind its gates: the days its facts touched, None when no fuel
    feed ever delivered."""
    if not delivered(FUEL_FEEDS, settings):
        return None  # no fuel delivery yet: nothing to build, no gate to run
    spark = get_spark(settings)
    ods = {name: _ods(spark, name, result.input_versions, settings) for name in FUEL_TABLES}
    return fuel_dwd(ods, start, end, result, settings, gates=True)


# Each fuel fact's key, in its own namespace; a station that (re)appears affects its facts.
FUEL_FACT_KEYS = {
    "ods_fuel_sales": ("sale_id",),
    "ods_fuel_deliveries": ("delivery_id",),
    "ods_fuel_tank_readings": ("station_id", "tank_id", "reading_time"),
}


def fuel_dwd(
    ods: dict[str, DataFrame],
    start: dt.date | None,
    end: dt.date | None,
    result: BuildResult,
    settings: Settings,
    *,
    gates: bool,
) -> set[dt.date]:
    """The fuel DWD tables from ODS frames (by ODS table name): the days the facts touched.

    The station dimension (small, SCD2) is rebuilt whole; each fact for the rows that the
    deliveries of the range affect, as for transactions. Without `gates` nothing is checked:
    tests use that to push hand-made broken rows through every layer.
    """
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    station_table = contracts["dwd_fuel_station"]
    with releasing():
        affected = dict(ods)
        stations_norm = cached(normalize(ods["ods_fuel_stations"], station_table))
        if start is not None and end is not None:
            # A fuel fact asks only whether its station is known (any version): a station's
            # first version changes its facts, on every day; a later version changes none.
            changed = cached(
                versions_since(
                    _delivered_in(ods["ods_fuel_stations"], start, end),
                    stations_norm,
                    station_table,
                    "station_id",
                    "station",
                ).where(F.col("_since").isNull())
            )
            # Most days bring no new station: without seeds each fact's first pass is its
            # fixed point, where seeds (even none) cost a second pass to confirm it.
            seeds = None if changed.isEmpty() else changed
            for name in FUEL_FACT_KEYS:
                table, keys, at = fact_keys(name, settings)
                feed = contracts[name].feed
                assert feed is not None
                affected[name] = affected_rows(
                    ods[name],
                    feed.name,
                    table,
                    keys,
                    days=(start, end),
                    follow=frozenset({name}),
                    seeds=seeds,
                    at=at,
                    settings=settings,
                )
        normalized = {
            name: stations_norm
            if name == "ods_fuel_stations"
            else cached(normalize(affected[name], contracts[dwd]))
            for name, dwd in FUEL_TABLES.items()
        }
        if gates:
            for name, rows in normalized.items():
                _gate_rejects(rows, name, start, end, settings, result)
        stations, station_rejects = build_fuel_station(
            normalized["ods_fuel_stations"], station_table
        )
        tables.replace_small(stations, station_table, settings)
        replace_quarantine(
            station_rejects, normalized["ods_fuel_stations"], "fuel_stations", settings
        )
        fuel = build_fuel_facts(
            normalized["ods_fuel_sales"],
            normalized["ods_fuel_deliveries"],
            normalized["ods_fuel_tank_readings"],
            tables.read(spark, station_table, settings=settings),
            contracts,
        )
        facts = {
            "ods_fuel_sales": fuel.sales,
            "ods_fuel_deliveries": fuel.deliveries,
            "ods_fuel_tank_readings": fuel.readings,
        }
        touched: dict[str, list[dt.date]] = {}
        for name, rows in facts.items():
            table = contracts[FUEL_TABLES[name]]
            written = replace_keys(rows, normalized[name], table, settings, BOOKS_ON[table.name])
            touched[table.name] = list(written)
            feed = contracts[name].feed
            assert feed is not None
            rejects = fuel.quarantine.where(F.col("feed") == feed.name)
            replace_quarantine(rejects, normalized[name], feed.name, settings)
    if gates:
        gate_dwd_table("dwd_fuel_station", result, settings)
        for name, days in touched.items():
            if days:
                gate_dwd_table(name, result, settings, tables.in_list("biz_date", days))
    days = {d for values in touched.values() for d in values}
    # A day's opening stock is the closing reading of the day before: a rewritten reading
    # day changes the next day's balance too.
    return days | {d + dt.timedelta(days=1) for d in touched["dwd_tank_reading"]}


def fuel_days(settings: Settings) -> tuple[dt.date, dt.date] | None:
    """First and last day with tank readings."""
    spark = get_spark(settings)
    bounds = (
        tables.read(spark, tables.contract("dwd_tank_reading", settings), settings=settings)
        .agg(F.min("biz_date"), F.max("biz_date"))
        .first()
    )
    return None if bounds[0] is None else (bounds[0], bounds[1])


def build_fuel_layers(
    ods: dict[str, DataFrame],
    start: dt.date | None,
    end: dt.date | None,
    result: BuildResult,
    settings: Settings,
    *,
    gates: bool,
) -> None:
    """Fuel DWD from ODS frames, then its DWS and ADS for [start, end] (all days when None)
    and the days before it that late fuel rows touched."""
    touched = fuel_dwd(ods, start, end, result, settings, gates=gates)
    _fuel_models(touched, start, end, result, settings)


def _fuel_models(
    touched: set[dt.date],
    start: dt.date | None,
    end: dt.date | None,
    result: BuildResult,
    settings: Settings,
) -> None:
    days = fuel_days(settings)
    if days is None:
        return  # no fuel data yet
    if start is None or end is None:
        start, end = days
    others = fuel_restated(touched, start, end, settings)
    fuel = BuildResult(start, end, result.input_versions, gates=result.gates, days=others)
    build_dws_ads(fuel, settings, rebuilt=FUEL_DWD)
    result.rows |= fuel.rows


def fuel_restated(
    touched: set[dt.date], start: dt.date, end: dt.date, settings: Settings
) -> set[dt.date]:
    """The days outside [start, end] whose balance the fuel rows of a build changed: every
    earlier one, and a later one only if it was built already (a later day that has not been
    built yet is built, whole, when its own deliveries come)."""
    later = sorted(d for d in touched if d > end)
    if later:
        ads = tables.contract("ads_fuel_inventory_check", settings)
        built = tables.read_native(ads, pc.field("biz_date").isin(later), settings)
        later = set(built.column("biz_date").to_pylist())
    return {d for d in touched if d < start} | set(later)


def delivered(feeds: tuple[str, ...], settings: Settings) -> bool:
    """Whether any of `feeds` ever delivered (the delivery log, read without Spark)."""
    log = tables.read_native_current(
        tables.contract("ods_delivery_log", settings), pc.field("feed").isin(list(feeds)), settings
    )
    return log.num_rows > 0


def refresh_fact(
    ods_name: str,
    dwd_name: str,
    builder: Callable[[DataFrame, TableContract], tuple[DataFrame, DataFrame]],
    start: dt.date | None,
    end: dt.date | None,
    result: BuildResult,
    settings: Settings,
) -> bool:
    """One feed's DWD table behind the ODS→DWD gate; False when the feed never delivered.

    A partitioned table is rebuilt for the keys that the deliveries of [start, end] carry, in
    the partitions those keys touch (a superseding tax delivery for 202405 delivered in July
    replaces rows of 202405); the DWD→DWS gate checks those partitions. An unpartitioned one
    (a dimension with history) is rewritten whole.
    """
    ods = tables.contract(ods_name, settings)
    assert ods.feed is not None
    if not delivered((ods.feed.name,), settings):
        return False
    spark = get_spark(settings)
    table = tables.contract(dwd_name, settings)
    everything = _ods(spark, ods_name, result.input_versions, settings)
    column = table.partition_by[0] if table.partition_by else None
    with releasing():
        rows = everything
        if column is not None and start is not None and end is not None:
            _, keys, at = fact_keys(ods_name, settings)
            rows = affected_rows(
                everything,
                ods.feed.name,
                table,
                keys,
                days=(start, end),
                follow=frozenset(keys.values()),
                at=at,
                settings=settings,
            )
        normalized = cached(normalize(rows, table))
        _gate_rejects(normalized, ods_name, start, end, settings, result)
        facts, rejects = builder(normalized, table)
        where = None
        if column is None:
            tables.replace_small(facts, table, settings)
        else:
            books_on = BOOKS_ON.get(table.name)
            touched = list(replace_keys(facts, normalized, table, settings, books_on))
            where = tables.in_list(column, touched) if touched else None
            result.restated[dwd_name] = partition_days(table, touched)
        replace_quarantine(rejects, normalized, ods.feed.name, settings)
    if column is None or where is not None:  # nothing rewritten: nothing to check
        gate_dwd_table(dwd_name, result, settings, where)
    return True


def partition_days(table: TableContract, parts: Collection) -> set[dt.date]:
    """The days that rewritten partitions of a DWD table hold: a date partition its day, a
    period partition (YYYYMM, a monthly filing) every day of its month."""
    if table.column(table.partition_by[0]).type == "date":
        return set(parts)
    return run_days(month_of(dt.date(int(period[:4]), int(period[4:]), 1)) for period in parts)


# ODS table -> (DWD table, builder) of the feeds whose DWD is one table of their own.
FEED_FACTS = {
    "ods_gov_enterprise_registry": ("dwd_enterprise", build_enterprise),
    "ods_gov_tax_monthly": ("dwd_tax_monthly", build_tax_monthly),
    "ods_gov_social_insurance": ("dwd_social_insurance", build_social_insurance),
    "ods_pay_settlements": ("dwd_pay_settlement", build_settlement),
    "ods_merchant_orders": ("dwd_merchant_order", build_merchant_order),
}


def fact_keys(
    ods_name: str, settings: Settings
) -> tuple[TableContract, dict[tuple[str, ...], str], str | None]:
    """The DWD facts of a feed rebuilt by key, how its lines relate (key columns to
    namespace), and the time its facts join a dimension's history at (None: they do not):
    what the line-key index holds for it and `affected_rows` follows."""
    contracts = tables.contracts(settings)
    if ods_name == "ods_pay_transactions":
        return contracts["dwd_pay_transaction"], TXN_KEYS, TXN_AT
    if ods_name in FUEL_FACT_KEYS:  # any version of a station makes it known: no time
        keys = {FUEL_FACT_KEYS[ods_name]: ods_name, ("station_id",): "station"}
        return contracts[FUEL_TABLES[ods_name]], keys, None
    table = contracts[FEED_FACTS[ods_name][0]]
    feed = contracts[ods_name].feed
    assert feed is not None
    return table, {tuple(table.primary_key): feed.name}, None


def index_lines(versions: dict[str, int], settings: Settings) -> None:
    """Index the new deliveries of every feed rebuilt by key, in one commit, before the
    feeds' builds read the index."""
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    partitioned = [ods for ods, (dwd, _) in FEED_FACTS.items() if contracts[dwd].partition_by]
    feeds = {}
    for name in ("ods_pay_transactions", *FUEL_FACT_KEYS, *partitioned):
        feed = contracts[name].feed
        assert feed is not None
        table, keys, at = fact_keys(name, settings)
        feeds[feed.name] = FeedKeys(partial(_ods, spark, name, versions, settings), table, keys, at)
    index_deliveries(feeds, settings)


def build_dimensions(
    rebuilt: list[str], settings: Settings, held: Collection[str] = ()
) -> list[str]:
    """The conformed dimensions (districts, MCCs, industries of the merchants and, when
    `rebuilt` holds it, the enterprises); returns the names of those rebuilt. A dimension
    built from a `held` table (one a gate blocked) keeps its rows."""
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    dims = {
        "dwd_dim_district": lambda: build_district(spark, contracts["dwd_dim_district"]),
        "dwd_dim_mcc": lambda: build_mcc(spark, contracts["dwd_dim_mcc"]),
        "dwd_dim_industry": lambda: _industries(rebuilt, contracts, settings),
    }
    built = [name for name in dims if not set(contracts[name].upstream) & set(held)]
    for name in built:
        tables.replace_small(dims[name](), contracts[name], settings)
    return built


def _industries(
    rebuilt: list[str], contracts: dict[str, TableContract], settings: Settings
) -> DataFrame:
    spark = get_spark(settings)
    codes = tables.read(spark, contracts["dwd_merchant"], settings=settings).select("industry_code")
    if "dwd_enterprise" in rebuilt:
        enterprises = tables.read(spark, contracts["dwd_enterprise"], settings=settings)
        codes = codes.unionByName(enterprises.select("industry_code"))
    return build_industry(codes.distinct(), contracts["dwd_dim_industry"])


class BuildBlocked(GateBlocked):
    """Gates blocked some tables; everything not downstream of them was promoted.

    Raised when the build ends, so the run still fails visibly (the CLI's exit code, the
    Airflow task) after the other domains went on; each block alerted when it happened.
    `result` is the first block's gate outcome, `blocks` all of them, `build` what was built.
    """

    def __init__(self, blocks: list[GateBlocked], build: BuildResult, held: list[str]) -> None:
        super().__init__(blocks[0].result, blocks[0].alerts)
        lines = [str(b) for b in blocks]
        self.args = ("\n".join([*lines, f"held: {', '.join(held)}"] if held else lines),)
        self.blocks = blocks
        self.build = build
        self.held = held


def held_below(held: Collection[str], contracts: dict[str, TableContract]) -> list[str]:
    """The DWD tables a blocked gate holds: `held` and every DWD table built from one of them
    (the conformed dimensions). The models below them are SQLMesh's to follow."""
    below = set(held)
    grown = True
    while grown:
        found = {
            t.name
            for t in contracts.values()
            if t.layer == "dwd" and t.name not in below and below & set(t.upstream)
        }
        below |= found
        grown = bool(found)
    return sorted(below)


def build(
    start: dt.date | None = None, end: dt.date | None = None, *, settings: Settings | None = None
) -> BuildResult:
    """Every domain's DWD -> DWS -> ADS for [start, end]. Every gate outcome is kept in
    dwd_gate_outcome, a blocking one too.

    Each domain's unit (payment; each feed of FEED_FACTS; fuel) stands alone, and the units
    run side by side (pipelines/units.py): a blocking check holds that unit's DWD tables and
    everything downstream of them (a model reading a held table and a promoted one too), the
    others go on, and the build then raises ``BuildBlocked`` naming every block."""
    settings = settings or get_settings()
    spent: dict[str, float] = {}  # where a build's time goes (benchmarks/pipeline.py shows it)

    @contextmanager
    def timed(step: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            spent[step] = spent.get(step, 0.0) + time.perf_counter() - began

    with kept_outcomes(start, end, settings) as keep_outcomes:
        with timed("pin inputs, index lines"):
            versions = pin_inputs(get_spark(settings), settings)
            if start is not None and end is not None:
                index_lines(versions, settings)
        with timed(f"{DWD_STEP} ({settings.units_at_once} at once)"):
            units = build_units(start, end, settings, versions)
        result, rebuilt, blocks = units.result, units.rebuilt, units.blocks
        held = units.held
        unit_spent = units.seconds
        with timed("dimensions"):
            rebuilt += build_dimensions(rebuilt, settings, held)
        touched = units.fuel
        fuel_span = fuel_days(settings) if touched is not None else None
        if touched is not None and fuel_span is not None:
            rebuilt += [*FUEL_DWD, FUEL_STATION]
            if start is None or end is None:  # every day with facts: payment's and fuel's
                spans = [d for d in [(result.start, result.end), fuel_span] if d[0]]
                result.start, result.end = min(a for a, _ in spans), max(b for _, b in spans)
            assert result.start is not None and result.end is not None
            result.days |= fuel_restated(touched, result.start, result.end, settings)
        with timed("gate outcomes, quality inputs"):
            keep_outcomes()  # every gate before the models has spoken: the scorecard reads them
            rebuilt += quality_inputs(result, settings)
        # A failed model audit restores every model table: held like a blocked DWD gate.
        with timed("DWS/ADS models"):
            try:
                build_dws_ads(result, settings, tuple(rebuilt), tuple(held))
            except GateBlocked as blocked:
                blocks.append(blocked)
    result.seconds, result.unit_seconds = spent, unit_spent
    if blocks:
        raise BuildBlocked(blocks, result, held)
    return result


@dataclass
class UnitsBuilt:
    """What a build's DWD units came to, gathered."""

    result: BuildResult  # every unit's gates and rows; payment's days and range
    rebuilt: list[str]  # the DWD tables written, but fuel's (see `fuel`) and the dimensions
    held: list[str]  # the DWD tables a block held, and those built from them (`held_below`)
    blocks: list[GateBlocked]
    fuel: set[dt.date] | None  # the days fuel's unit rewrote; None: it did not run or wrote none
    seconds: dict[str, float]  # each unit's wall time (side by side, they overlap)


def build_units(
    start: dt.date | None,
    end: dt.date | None,
    settings: Settings,
    versions: dict[str, int],
    domain: str | None = None,
) -> UnitsBuilt:
    """Every domain's DWD units for [start, end] (or `domain`'s alone: its layer DAG's `dwd`
    task), side by side, each behind its gates. A unit a gate blocked holds its tables and
    what is built from them; the other units go on (the caller raises once the rest is
    promoted)."""
    contracts = tables.contracts(settings)
    # Each unit but payment's (build_dwd makes its own) gathers into a result of its own.
    own: dict[str, BuildResult] = {}
    units = [Unit(PAYMENT, PAYMENT_UNIT, partial(_payment, start, end, settings, versions))]
    for ods, (dwd, builder) in FEED_FACTS.items():
        own[dwd] = BuildResult(start, end, versions)
        step = partial(refresh_fact, ods, dwd, builder, start, end, own[dwd], settings)
        units.append(Unit(dwd, (dwd,), step))
    own[FUEL] = BuildResult(start, end, versions)
    fuel = (*FUEL_DWD, FUEL_STATION)
    units.append(Unit(FUEL, fuel, partial(build_fuel_dwd, start, end, own[FUEL], settings)))
    if domain is not None:
        units = [u for u in units if contracts[u.tables[0]].domain == domain]
    merchants = contracts["dwd_merchant"]
    paying = any(unit.label == PAYMENT for unit in units)  # the unit that rebuilds merchants
    bound = tables.read_native(merchants, settings=settings, columns=BINDING) if paying else None
    outcomes = run_units(units, contracts, settings.units_at_once)

    blocks: list[GateBlocked] = []
    held: list[str] = []
    for unit in units:
        blocked = outcomes[unit.label].blocked
        if blocked is not None:
            blocks.append(blocked)
            held.extend(_held(unit, blocked))
    held = held_below(held, contracts)
    paid = outcomes.get(PAYMENT)
    result = paid.value if paid and paid.value else BuildResult(start, end, versions)
    assert isinstance(result, BuildResult)
    rebuilt = [t for t in PAYMENT_UNIT if PAYMENT in outcomes and t not in held]
    for unit in units:  # in the units' order: the outcome is reproducible
        if unit.label in own:
            result.gates += own[unit.label].gates
            result.rows |= own[unit.label].rows
            result.restated |= own[unit.label].restated
            if unit.label != FUEL and outcomes[unit.label].value:
                rebuilt.append(unit.label)
    result.gates += [b.result for b in blocks]
    result.quarantined = quarantined_by_feed(settings)
    if bound is not None and "dwd_merchant" in rebuilt:
        # Orders bind at query time: the months of those a new uscc binds anew are restated.
        now = tables.read_native(merchants, settings=settings, columns=BINDING)
        orders = tables.read(
            get_spark(settings), contracts["dwd_merchant_order"], settings=settings
        )
        result.restated["dwd_merchant"] = rebound_days(binding_changes(bound, now), orders)
    touched = outcomes[FUEL].value if FUEL in outcomes else None
    assert touched is None or isinstance(touched, set)
    seconds = {label: outcome.seconds for label, outcome in outcomes.items()}
    return UnitsBuilt(result, rebuilt, held, blocks, touched, seconds)


def _payment(
    start: dt.date | None, end: dt.date | None, settings: Settings, versions: dict[str, int]
) -> BuildResult:
    """Transactions with the merchant dimension they are booked against, behind their gates."""
    result = build_dwd(start, end, settings=settings, versions=versions)
    gate_dwd(result, settings)
    return result


def _held(unit: Unit, blocked: GateBlocked) -> tuple[str, ...]:
    """The DWD tables of `unit` that its block holds: all of them, but the payment unit's
    merchants stay promoted when a transactions' gate blocked (build_dwd wrote and judged them
    first). What is built from a held table is held too (`held_below`)."""
    if unit.label == PAYMENT and blocked.result.table in PAYMENT_BLOCKS:
        return PAYMENT_DWD
    return unit.tables


# What the quality scorecard reads besides ODS and dwd_quarantine: every build rewrites them.
QUALITY_DWD = ("dwd_gate_outcome", "dwd_dim_feed", "dwd_feed_delivery")


def quality_inputs(result: BuildResult, settings: Settings) -> list[str]:
    """Before the models: the feed dimension from the contracts, the deliveries from their
    log, and the versions of the tables the quality scorecard reads, as it will read them (its
    rows carry them). Returns the DWD tables whose rewrite restates the scorecard over the
    build's days."""
    write_feed_dimension(settings)  # a root: pinned once written
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    # The roots of its lineage, as on every model's rows: the delivery log's, not its copy's,
    # which is then written from that version of the log (a delivery may commit meanwhile).
    result.input_versions |= {
        name: tables.version(spark, contracts[name], settings)
        for name in input_roots("ads_quality_scorecard", contracts)
    }
    write_feed_deliveries(settings, result.input_versions[DELIVERY_LOG])
    return list(QUALITY_DWD)
