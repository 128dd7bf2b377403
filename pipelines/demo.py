"""The demo: one command from nothing to the cockpit table, with the reconciliation shown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyspark.sql.functions as F
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from citylake.settings import Settings, get_settings
from citylake.spark import get_spark
from citylake.views import deliveries_table
from pipelines import tables
from pipelines.build import build
from pipelines.generator import generate_payment
from pipelines.ingest import DeliveryResult, ingest_files

FEEDS = ("merchant_registry", "pay_transactions")  # the registry first: txns look merchants up
LAYER_TABLES = (
    "ods_merchant_registry",
    "ods_pay_transactions",
    "ods_quarantine",
    "dwd_merchant",
    "dwd_pay_transaction",
    "dwd_quarantine",
    "dws_trade_merchant_daily",
    "ads_trade_daily",
)


def run_demo(
    start: dt.date, days: int, scale: float, *, console: Console, settings: Settings | None = None
) -> bool:
    settings = settings or get_settings()
    landing = Path(settings.landing)
    generated = generate_payment(landing, start, days, scale=scale)
    console.print(
        f"[bold]1. generated[/] {sum(len(f) for f in generated.files.values())} "
        f"deliveries under {landing} (scale {scale}, {days} days from {start})"
    )

    results: list[DeliveryResult] = []
    for feed in FEEDS:
        results += ingest_files(feed, generated.files[feed], settings=settings)
    console.print("[bold]2. ingested[/] into ODS")
    console.print(deliveries_table(results))

    result = build(settings=settings)
    console.print(f"[bold]3. built[/] DWD → DWS → ADS for {result.start} … {result.end}")
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

    ok = _print_reconciliation(spark, settings, console)
    ads = tables.table_path(tables.contract("ads_trade_daily", settings), settings)
    console.print(f"[bold]ADS table ads_trade_daily:[/] {ads}")
    return ok


def _print_reconciliation(spark, settings: Settings, console: Console) -> bool:
    """Per feed, from the delivery log and the tables: loaded + quarantined = delivered."""
    log = tables.read(spark, tables.contract("ods_delivery_log", settings), settings=settings)
    ingest_q = tables.read(spark, tables.contract("ods_quarantine", settings), settings=settings)
    table = Table(
        "feed",
        "delivered",
        "in ODS",
        "quarantined",
        "holds",
        title="reconciliation: loaded + quarantined = delivered",
    )
    ok = True
    for feed in FEEDS:
        ods = tables.read(spark, tables.feed_contract(feed, settings), settings=settings)
        delivered = log.where(F.col("feed") == feed).agg(F.sum("delivered")).first()[0] or 0
        loaded = ods.count()
        quarantined = ingest_q.where(F.col("feed") == feed).count()
        holds = loaded + quarantined == delivered
        ok &= holds
        table.add_row(
            feed,
            f"{delivered:,}",
            f"{loaded:,}",
            f"{quarantined:,}",
            "[green]yes[/]" if holds else "[red]NO[/]",
        )
    console.print(table)
    return ok
