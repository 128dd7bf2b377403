"""The paths from ODS to the cockpit: DWD -> gate -> DWS -> ADS, for a range of days.

Two domains run today, one after the other: payment (merchants and transactions to
``ads_trade_daily``) and fuel supervision (stations, pump sales, deliveries and tank readings
to ``ads_fuel_inventory_check``).

Gates: ODS→DWD validates the normalized candidate rows before anything is written to DWD (too
many contract breaks in the deliveries of the range block the feed); DWD→DWS validates the DWD
tables against their contracts before DWS and ADS are rebuilt. A blocked gate raises
``GateBlocked`` and nothing downstream of it changes.

Every step reads ODS at one pinned Delta version, so a build is a pure function of those
versions; the versions are written on each ADS row for time-travel reproduction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.compute as pc
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from citylake.settings import Settings, get_settings
from citylake.spark import get_spark
from pipelines import tables
from pipelines.dwd.dimensions import build_district, build_industry, build_mcc
from pipelines.dwd.enterprise import build_enterprise
from pipelines.dwd.fuel import FUEL_FEEDS, FUEL_TABLES, build_fuel_facts, build_fuel_station
from pipelines.dwd.merchant import build_merchant
from pipelines.dwd.order import build_merchant_order
from pipelines.dwd.pay_transaction import build_pay_transaction
from pipelines.dwd.settlement import build_settlement
from pipelines.dwd.tax import build_social_insurance, build_tax_monthly
from pipelines.modeling.runner import build_models, day_runs
from pipelines.normalize import normalize
from pipelines.tables import date_range_predicate
from quality.gate import GateResult, enforce, enforce_share
from quality.suites import contract_checks, reject_rate_name
from warehouse_layers.contract import TableContract

PAYMENT_INPUTS = ("ods_merchant_registry", "ods_pay_transactions")
PAYMENT_DWD = ("dwd_pay_transaction",)
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
    ads_path: str = ""


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
    rows = tables.read(spark, tables.contract(name, settings), versions[name], settings)
    log = tables.read(spark, tables.contract("ods_delivery_log", settings), settings=settings)
    committed = log.select(F.col("delivery_id").alias("_delivery_id")).distinct()
    return rows.join(F.broadcast(committed), "_delivery_id", "left_semi")


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


def build_dwd(
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    settings: Settings | None = None,
    versions: dict[str, int] | None = None,
) -> BuildResult:
    """ODS -> DWD for the range (None = every day present), behind the ODS→DWD gate."""
    settings = settings or get_settings()
    spark = get_spark(settings)
    versions = versions or pin_inputs(spark, settings)
    result = BuildResult(start, end, versions)
    dwd_merchant = tables.contract("dwd_merchant", settings)
    dwd_txn = tables.contract("dwd_pay_transaction", settings)
    quarantine = tables.contract("dwd_quarantine", settings)

    merchants_norm = normalize(
        _ods(spark, "ods_merchant_registry", versions, settings), dwd_merchant
    ).cache()
    txn_norm = normalize(_ods(spark, "ods_pay_transactions", versions, settings), dwd_txn).cache()
    _gate_rejects(merchants_norm, "ods_merchant_registry", start, end, settings, result)
    _gate_rejects(txn_norm, "ods_pay_transactions", start, end, settings, result)

    merchants, merchant_rejects = build_merchant(merchants_norm, dwd_merchant)
    tables.replace(merchants, dwd_merchant, settings=settings)
    merchants = tables.read(spark, dwd_merchant, settings=settings)
    facts, txn_rejects = build_pay_transaction(txn_norm, merchants, dwd_txn)
    facts = facts.cache()
    if start is None or end is None:
        bounds = facts.agg(F.min("booked_date"), F.max("booked_date")).first()
        start, end = bounds[0], bounds[1]
        result.start, result.end = start, end
    if start is not None and end is not None:
        where = date_range_predicate("booked_date", start, end)
        # A refund or reversal delivered in the range books back on its original's day, which
        # may lie before the range: those days are rewritten too (and restated downstream).
        delivered = txn_norm.where(date_range_predicate("_business_date", start, end))
        late = sorted(
            r[0]
            for r in facts.join(delivered.select("txn_id").distinct(), "txn_id", "left_semi")
            .where(f"NOT ({where})")
            .select("booked_date")
            .distinct()
            .collect()
        )
        if late:
            where = f"({where}) OR {_in_list('booked_date', late)}"
            result.days |= set(late)
        in_range = facts.where(where)
        tables.replace(in_range, dwd_txn, where=where, settings=settings)
        result.rows["dwd_pay_transaction"] = in_range.count()  # from the cache, not a re-read
    # Quarantine is a function of all of ODS: rebuilt whole for these feeds, in one commit.
    tables.replace(
        merchant_rejects.unionByName(txn_rejects),
        quarantine,
        where="feed IN ('merchant_registry', 'pay_transactions')",
        settings=settings,
    )
    spark.catalog.clearCache()  # the frames cached above and inside the DWD builders
    counts = tables.read(spark, quarantine, settings=settings).groupBy("feed").count().collect()
    result.quarantined = {r["feed"]: r["count"] for r in counts}
    result.rows["dwd_merchant"] = tables.read(spark, dwd_merchant, settings=settings).count()
    return result


def gate_dwd(result: BuildResult, settings: Settings | None = None) -> None:
    """DWD→DWS gate: the payment DWD tables must satisfy their contracts where rebuilt."""
    settings = settings or get_settings()
    where = _range(result, "booked_date")
    if where and result.days:  # the original days that late refunds rewrote
        where = f"({where}) OR {_in_list('booked_date', sorted(result.days))}"
    gate_dwd_table("dwd_merchant", result, settings)
    gate_dwd_table("dwd_pay_transaction", result, settings, where)


def gate_dwd_table(
    name: str, result: BuildResult, settings: Settings, where: str | None = None
) -> None:
    """The DWD→DWS gate of one table: its rows (in `where`) must satisfy its contract."""
    table = tables.contract(name, settings)
    rows = tables.read(get_spark(settings), table, settings=settings)
    if where:
        rows = rows.where(where)
    checks = contract_checks(table)
    result.gates.append(enforce(rows, checks, gate="dwd→dws", table=name, settings=settings))


def _range(result: BuildResult, column: str) -> str | None:
    if result.start is None or result.end is None:
        return None
    return date_range_predicate(column, result.start, result.end)


def build_dws_ads(
    result: BuildResult,
    settings: Settings | None = None,
    rebuilt: tuple[str, ...] = PAYMENT_DWD,
) -> BuildResult:
    """DWS and ADS downstream of the `rebuilt` DWD tables for [result.start, result.end]."""
    settings = settings or get_settings()
    if result.start is None or result.end is None:
        return result  # nothing in DWD yet
    span = (result.end - result.start).days + 1
    days = {result.start + dt.timedelta(days=i) for i in range(span)}
    runs = day_runs(days | result.days)
    touched = build_models(rebuilt, runs, result.input_versions, settings)
    spark = get_spark(settings)
    for name in touched:
        table = tables.contract(name, settings)
        rows = tables.read(spark, table, settings=settings)
        if "biz_date" in table.partition_by:
            rows = rows.where(date_range_predicate("biz_date", result.start, result.end))
        result.rows[name] = rows.count()
    result.ads_path = tables.table_path(tables.contract("ads_trade_daily", settings), settings)
    return result


def build_fuel_dwd(
    start: dt.date | None, end: dt.date | None, result: BuildResult, settings: Settings
) -> bool:
    """Fuel supervision's DWD behind its gates; False when no fuel feed ever delivered.

    The fuel DWD tables are rebuilt whole (a re-delivered sale or a late reading may touch any
    day and the balance needs the day before); DWS and ADS follow for the build's days.
    """
    if not _delivered(FUEL_FEEDS, settings):
        return False  # no fuel delivery yet: nothing to build, no gate to run
    spark = get_spark(settings)
    ods = {name: _ods(spark, name, result.input_versions, settings) for name in FUEL_TABLES}
    fuel_dwd(ods, start, end, result, settings, gates=True)
    return True


def fuel_dwd(
    ods: dict[str, DataFrame],
    start: dt.date | None,
    end: dt.date | None,
    result: BuildResult,
    settings: Settings,
    *,
    gates: bool,
) -> None:
    """The fuel DWD tables from ODS frames (by ODS table name). Without `gates` nothing is
    checked: tests use that to push hand-made broken rows through every layer."""
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    normalized = {
        name: normalize(ods[name], contracts[dwd]).cache() for name, dwd in FUEL_TABLES.items()
    }
    if gates:
        for name, rows in normalized.items():
            _gate_rejects(rows, name, start, end, settings, result)
    station_table = contracts["dwd_fuel_station"]
    stations, station_rejects = build_fuel_station(normalized["ods_fuel_stations"], station_table)
    tables.replace(stations, station_table, settings=settings)
    fuel = build_fuel_facts(
        normalized["ods_fuel_sales"],
        normalized["ods_fuel_deliveries"],
        normalized["ods_fuel_tank_readings"],
        tables.read(spark, station_table, settings=settings),
        contracts,
    )
    facts = {"dwd_fuel_sale": fuel.sales, "dwd_fuel_delivery": fuel.deliveries}
    facts["dwd_tank_reading"] = fuel.readings
    for name, rows in facts.items():
        tables.replace(rows, contracts[name], settings=settings)
    feeds = ", ".join(f"'{f}'" for f in FUEL_FEEDS)
    tables.replace(
        station_rejects.unionByName(fuel.quarantine),
        contracts["dwd_quarantine"],
        where=f"feed IN ({feeds})",
        settings=settings,
    )
    spark.catalog.clearCache()
    for name in ("dwd_fuel_station", *facts) if gates else ():
        gate_dwd_table(name, result, settings)


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
    """Fuel DWD from ODS frames, then its DWS and ADS for [start, end] (all days when None)."""
    fuel_dwd(ods, start, end, result, settings, gates=gates)
    if start is None or end is None:
        days = fuel_days(settings)
        if days is None:
            return  # no fuel data yet
        start, end = days
    fuel = BuildResult(start, end, result.input_versions, gates=result.gates)
    build_dws_ads(fuel, settings, rebuilt=FUEL_DWD)
    result.rows |= fuel.rows


def _delivered(feeds: tuple[str, ...], settings: Settings) -> bool:
    """Whether any of `feeds` ever delivered (the delivery log, read without Spark)."""
    log = tables.read_native(
        tables.contract("ods_delivery_log", settings), pc.field("feed").isin(list(feeds)), settings
    )
    return log.num_rows > 0


def _in_list(column: str, values: list) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


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

    A partitioned table rewrites only the partitions that the deliveries of [start, end]
    touch (a superseding tax delivery for 202405 delivered in July rewrites 202405); an
    unpartitioned one (a dimension with history) is rewritten whole. The feed's quarantine is
    a function of all its deliveries and is rewritten with it, in one commit.
    """
    ods = tables.contract(ods_name, settings)
    assert ods.feed is not None
    if not _delivered((ods.feed.name,), settings):
        return False
    spark = get_spark(settings)
    table = tables.contract(dwd_name, settings)
    normalized = normalize(_ods(spark, ods_name, result.input_versions, settings), table).cache()
    _gate_rejects(normalized, ods_name, start, end, settings, result)
    rows, rejects = builder(normalized, table)
    column = table.partition_by[0] if table.partition_by else None
    if column is None or start is None or end is None:
        tables.replace(rows, table, settings=settings)
    else:
        key = list(ods.feed.key)
        delivered = normalized.where(date_range_predicate("_business_date", start, end)).select(
            *key
        )
        touched = [
            r[0]
            for r in rows.join(delivered.distinct(), key, "left_semi")
            .select(column)
            .distinct()
            .collect()
            if r[0] is not None
        ]
        if touched:
            where = _in_list(column, sorted(touched))
            tables.replace(rows.where(where), table, where=where, settings=settings)
    tables.replace(
        rejects,
        tables.contract("dwd_quarantine", settings),
        where=f"feed = '{ods.feed.name}'",
        settings=settings,
    )
    spark.catalog.clearCache()
    gate_dwd_table(dwd_name, result, settings)
    return True


# ODS table -> (DWD table, builder) of the feeds whose DWD is one table of their own.
FEED_FACTS = {
    "ods_gov_enterprise_registry": ("dwd_enterprise", build_enterprise),
    "ods_gov_tax_monthly": ("dwd_tax_monthly", build_tax_monthly),
    "ods_gov_social_insurance": ("dwd_social_insurance", build_social_insurance),
    "ods_pay_settlements": ("dwd_pay_settlement", build_settlement),
    "ods_merchant_orders": ("dwd_merchant_order", build_merchant_order),
}


def build_feed_facts(
    start: dt.date | None, end: dt.date | None, result: BuildResult, settings: Settings
) -> list[str]:
    """Government facts, settlements and platform orders, then the conformed dimensions."""
    rebuilt = [
        dwd
        for ods, (dwd, builder) in FEED_FACTS.items()
        if refresh_fact(ods, dwd, builder, start, end, result, settings)
    ]
    spark = get_spark(settings)
    contracts = tables.contracts(settings)
    dims = {
        "dwd_dim_district": build_district(spark, contracts["dwd_dim_district"]),
        "dwd_dim_mcc": build_mcc(spark, contracts["dwd_dim_mcc"]),
    }
    codes = tables.read(spark, contracts["dwd_merchant"], settings=settings).select("industry_code")
    if "dwd_enterprise" in rebuilt:
        enterprises = tables.read(spark, contracts["dwd_enterprise"], settings=settings)
        codes = codes.unionByName(enterprises.select("industry_code"))
    dims["dwd_dim_industry"] = build_industry(codes.distinct(), contracts["dwd_dim_industry"])
    for name, rows in dims.items():
        tables.replace(rows, contracts[name], settings=settings)
    return [*rebuilt, *dims]


def build(
    start: dt.date | None = None, end: dt.date | None = None, *, settings: Settings | None = None
) -> BuildResult:
    """Every domain's DWD -> DWS -> ADS for [start, end]; raises GateBlocked when a blocking
    check fails."""
    settings = settings or get_settings()
    result = build_dwd(start, end, settings=settings)
    gate_dwd(result, settings)
    rebuilt = [*PAYMENT_DWD, "dwd_merchant"]
    rebuilt += build_feed_facts(start, end, result, settings)
    if build_fuel_dwd(start, end, result, settings):
        rebuilt += [*FUEL_DWD, "dwd_fuel_station"]
        if start is None or end is None:  # every day with facts: payment's and fuel's
            spans = [d for d in [(result.start, result.end), fuel_days(settings)] if d and d[0]]
            if spans:
                result.start, result.end = min(a for a, _ in spans), max(b for _, b in spans)
    build_dws_ads(result, settings, rebuilt=tuple(rebuilt))
    return result
