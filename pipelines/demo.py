"""The demo: one command from nothing to the cockpit table, every feed through its channel.

Each simulated day, the city's sources move: the payment system's database gets the day's
transactions and settlements, departments publish their changes to the government exchange,
and the landing feeds drop files. The platform then pulls the database and the exchange and
ingests the landing zone, exactly as its scheduled jobs do, and builds every layer behind the
quality gates. The source stand-ins (PostgreSQL, the exchange) are started for the demo on
127.0.0.1 and stopped again by their pids, unless `citylake up` already runs them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import SparkSession
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from citylake import stack, trino
from citylake.settings import Settings, get_settings
from citylake.spark import get_spark
from citylake.views import deliveries_table
from pipelines import tables
from pipelines.build import BuildResult, build
from pipelines.channels.pull import pull_feeds
from pipelines.dwd.gate_outcome import covered_dates
from pipelines.generator import FEEDS, CityDay, generate_city, write_day
from pipelines.ingest import DeliveryResult, ingest_files

LAYER_TABLES = (
    "dwd_merchant",
    "dwd_pay_transaction",
    "dwd_quarantine",
    "dws_trade_merchant_daily",
    "ads_trade_daily",
    "dwd_fuel_station",
    "dwd_fuel_sale",
    "dwd_fuel_delivery",
    "dwd_tank_reading",
    "dws_fuel_station_product_daily",
    "ads_fuel_inventory_check",
    "dwd_enterprise",
    "dwd_tax_monthly",
    "dwd_social_insurance",
    "dwd_pay_settlement",
    "dwd_merchant_order",
    "dws_enterprise_monthly",
    "ads_fund_backflow_monthly",
    "ads_tax_monthly",
    "ads_inclusion_candidates",
    "ads_economy_overview",
    "dwd_dim_feed",
    "dwd_feed_delivery",
    "dwd_gate_outcome",
    "ads_quality_scorecard",
)


def run_demo(
    start: dt.date, days: int, scale: float, *, console: Console, settings: Settings | None = None
) -> bool:
    settings = settings or get_settings()
    # The demo loads its sources and pulls them in turn, never at the same time, so the
    # database channel needs no safety lag against in-flight source transactions.
    settings = settings.model_copy(
        update={"source_db": settings.source_db.model_copy(update={"watermark_lag_seconds": 0.0})}
    )
    sources = stack.select(list(stack.SOURCES))
    running = {s.name for s, svc in stack.status(settings) if svc.running}
    started = [s for s in sources if s.name not in running]
    # Every source is started, the running ones too: a start reuses a running server and
    # provisions it (a PostgreSQL that `citylake up superset` started for Superset's metadata
    # has no payment tables yet). Only the ones started here are stopped again.
    for s in sources:
        s.start(settings)
    console.print(
        "[bold]0. sources[/] running: "
        + ", ".join(f"{s.name} ({s.address(settings)})" for s in sources)
    )
    try:
        results: list[DeliveryResult] = []
        for city_day in generate_city(start, days, scale=scale):
            results += _deliver_and_ingest(city_day, settings, console)
        console.print("[bold]2. ingested[/] into ODS (every delivery of every feed)")
        console.print(deliveries_table(_summarise(results), title="deliveries per feed and day"))
    finally:
        for s in started:
            s.stop(settings)

    result = build(settings=settings)
    console.print(f"[bold]3. built[/] DWD → DWS → ADS for {result.start} … {result.end}")
    if trino.running(settings):  # `citylake up` started Trino: the new tables join its catalog
        trino.register_warehouse(settings)
    for gate in result.gates:
        console.print(f"   {escape(gate.describe())}")

    spark = get_spark(settings)
    counts = Table("layer", "table", "rows", title="rows per layer")
    for name in LAYER_TABLES:
        c = tables.contract(name, settings)
        counts.add_row(
            c.layer.upper(), name, f"{tables.read(spark, c, settings=settings).count():,}"
        )
    console.print(counts)

    reasons = (
        tables.read(spark, tables.contract("dwd_quarantine", settings), settings=settings)
        .groupBy("feed", "reason_code")
        .count()
        .orderBy("feed", F.desc("count"))
        .collect()
    )
    quarantine = Table("feed", "reason", "rows", title="quarantined by the contracts (DWD)")
    for r in reasons:
        quarantine.add_row(r["feed"], r["reason_code"], str(r["count"]))
    console.print(quarantine)

    flagged = (
        tables.read(spark, tables.contract("ads_fuel_inventory_check", settings), settings=settings)
        .where("flag")
        .orderBy(F.desc("gap_rate"))
        .collect()
    )
    fuel = Table(
        "date", "station", "product", "gap (L)", "gap rate", title="疑似漏报: fuel gap over 0.5 %"
    )
    for r in flagged[:10]:
        fuel.add_row(
            str(r["biz_date"]),
            r["station_id"],
            r["product_code"],
            f"{r['gap_liters']:,.1f}",
            f"{r['gap_rate']:.2%}",
        )
    console.print(fuel)
    _print_cockpit(spark, settings, console)
    _print_scorecard(spark, settings, console)

    ok = _print_reconciliation(spark, settings, console)
    write_quality_report(result, settings, console)
    ads = tables.table_path(tables.contract("ads_trade_daily", settings), settings)
    console.print(f"[bold]ADS table ads_trade_daily:[/] {ads}")
    return ok


def write_quality_report(result: BuildResult, settings: Settings, console: Console) -> list[Path]:
    """The regulator report of the days built, in var/reports (a build of everything without
    a range of its own: the delivery log's first and last business dates)."""
    start, end = covered_dates(result.start, result.end, settings)
    if start is None or end is None:
        return []
    from quality.report import write_report  # matplotlib etc. only when it is needed

    paths = list(write_report(start, end, settings=settings))
    for path in paths:
        console.print(f"[bold]quality report (数据质量评估报告):[/] {path}")
    return paths


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _print_cockpit(spark: SparkSession, settings: Settings, console: Console) -> None:
    """The monthly cockpit (经济总览) and the 纳统 candidates, as the ADS tables hold them."""

    overview = Table(
        "month",
        "net trade (元)",
        "mom",
        "active merchants",
        "new / closed enterprises",
        "backflow",
        "tax (元)",
        title="ads_economy_overview (经济总览)",
    )
    months = tables.read(
        spark, tables.contract("ads_economy_overview", settings), settings=settings
    )
    for r in months.orderBy(F.desc("month")).limit(4).collect():
        overview.add_row(
            str(r["month"])[:7],
            "—" if r["trade_net_fen"] is None else f"{r['trade_net_fen'] / 100:,.0f}",
            _share(r["trade_mom"]),
            "—" if r["active_merchants"] is None else f"{r['active_merchants']:,}",
            f"{r['new_enterprises'] or 0} / {r['closed_enterprises'] or 0}",
            _share(r["backflow_rate"]),
            "—" if r["tax_total_yuan"] is None else f"{r['tax_total_yuan']:,.0f}",
        )
    console.print(overview)
    candidates = tables.read(
        spark, tables.contract("ads_inclusion_candidates", settings), settings=settings
    )
    stages = candidates.groupBy("year", "stage").count().orderBy("year", "stage").collect()
    console.print(
        "纳统 candidates (ads_inclusion_candidates): "
        + (", ".join(f"{r['year']} {r['stage']} {r['count']}" for r in stages) or "none")
    )


def _print_scorecard(spark: SparkSession, settings: Settings, console: Console) -> None:
    """ads_quality_scorecard of the last business date built, one line per feed."""
    scorecard = tables.read(
        spark, tables.contract("ads_quality_scorecard", settings), settings=settings
    )
    last = scorecard.agg(F.max("biz_date")).first()[0]
    if last is None:
        return

    table = Table(
        "feed",
        "owner",
        "delivered",
        "loaded",
        "quarantined",
        "completeness",
        "validity",
        "timeliness",
        "checks passed / failed",
        title=f"ads_quality_scorecard (数据质量记分卡) {last}",
        caption="timeliness: the period's first delivery landed by the feed's deadline "
        "(a replay of past days lands late)",
    )
    for r in scorecard.where(F.col("biz_date") == last).orderBy("feed").collect():
        table.add_row(
            r["feed"],
            r["owner_department"],
            f"{r['delivered']:,}",
            f"{r['loaded']:,}",
            f"{r['quarantined']:,}",
            _share(r["completeness"]),
            _share(r["validity"]),
            _share(r["timeliness"]),
            f"{r['checks_passed']} / {r['checks_failed']}",
        )
    console.print(table)


def _deliver_and_ingest(
    city_day: CityDay, settings: Settings, console: Console
) -> list[DeliveryResult]:
    """The sources deliver one day; the platform pulls and ingests it."""
    from citylake.postgres import connect_source_db
    from sources.gov_exchange import publish
    from sources.payment_db import load_settlements, load_transactions

    day = city_day.day
    with connect_source_db(settings) as conn:
        loaded = [
            load_transactions(conn, city_day.rows("pay_transactions")),
            load_settlements(conn, city_day.rows("pay_settlements")),
        ]
    published = {
        feed: len(publish(feed, city_day.rows(feed), settings))
        for feed in FEEDS
        if tables.feed_contract(feed, settings).feed.channel == "exchange"  # type: ignore[union-attr]
    }
    files = write_day(Path(settings.landing), city_day)
    console.print(
        f"[bold]1. {day}[/] sources delivered: database "
        + ", ".join(f"{r.table} +{r.inserted + r.updated:,}" for r in loaded)
        + f" (unstorable in the typed tables: {sum(len(r.rejected) for r in loaded):,}); "
        + "exchange "
        + ", ".join(f"{f} +{n:,}" for f, n in published.items())
        + f"; landing {len(files)} files"
    )
    results = pull_feeds(business_date=day, settings=settings)
    # The registry first: downstream rows look merchants up.
    for feed in sorted(files, key=lambda f: f != "merchant_registry"):
        results += ingest_files(feed, [files[feed]], business_date=day, settings=settings)
    return results


def _summarise(results: list[DeliveryResult]) -> list[DeliveryResult]:
    """One line per feed and business date (pages and batches of a pull added up)."""
    groups: dict[tuple[str, dt.date], list[DeliveryResult]] = {}
    for r in results:
        groups.setdefault((r.feed, r.business_date), []).append(r)
    summary = []
    for (feed, day), rs in groups.items():
        formats = Counter(r.source_format for r in rs)
        summary.append(
            DeliveryResult(
                feed=feed,
                delivery_id=f"{len(rs)} deliveries" if len(rs) > 1 else rs[0].delivery_id,
                source=rs[0].source if len(rs) == 1 else f"{len(rs)} batches/pages",
                business_date=day,
                source_format=formats.most_common(1)[0][0],
                delivered=sum(r.delivered for r in rs),
                loaded=sum(r.loaded for r in rs),
                quarantined=sum(r.quarantined for r in rs),
                status="loaded" if all(r.status == "loaded" for r in rs) else "partially_loaded",
                error=None,
                already_ingested=all(r.already_ingested for r in rs),
            )
        )
    return summary


def _print_reconciliation(spark, settings: Settings, console: Console) -> bool:
    """Per feed, from the delivery log and the tables: loaded + quarantined = delivered."""
    log = tables.read(spark, tables.contract("ods_delivery_log", settings), settings=settings)
    ingest_q = tables.read(spark, tables.contract("ods_quarantine", settings), settings=settings)
    per_feed = {
        r["feed"]: r
        for r in log.groupBy("feed")
        .agg(
            F.sum("delivered").alias("delivered"),
            F.count("*").alias("deliveries"),
            F.concat_ws(",", F.collect_set("channel")).alias("channels"),
        )
        .collect()
    }
    quarantined = {r["feed"]: r["count"] for r in ingest_q.groupBy("feed").count().collect()}
    table = Table(
        "feed",
        "channel",
        "deliveries",
        "delivered",
        "in ODS",
        "quarantined",
        "holds",
        title="reconciliation: loaded + quarantined = delivered",
    )
    ok = True
    for feed in FEEDS:
        ods = tables.read(spark, tables.feed_contract(feed, settings), settings=settings)
        logged = per_feed.get(feed)
        delivered = logged["delivered"] if logged else 0
        loaded, q = ods.count(), quarantined.get(feed, 0)
        holds = loaded + q == delivered
        ok &= holds
        table.add_row(
            feed,
            logged["channels"] if logged else "",
            f"{logged['deliveries'] if logged else 0:,}",
            f"{delivered:,}",
            f"{loaded:,}",
            f"{q:,}",
            "[green]yes[/]" if holds else "[red]NO[/]",
        )
    console.print(table)
    return ok
