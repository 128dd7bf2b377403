"""Cockpit response times: each dashboard's render in headless Chromium, and the slowest of the
cockpit's chart queries run through Trino.

    .venv/bin/python benchmarks/cockpit.py [--runs 3]
    .venv/bin/python benchmarks/cockpit.py --year   # a year of ADS rows at scale 1's shape

Uses the running stack (`citylake up trino superset`) on whatever warehouse the settings name
(build it first, e.g. `citylake demo` or benchmarks/pipeline.py). With --year it writes a
year-sized ADS layer into ./var/bench-cockpit instead (delta-rs, the contracts' schemas; sizes
of scale 1: 11 districts × 6 sectors × 5 channels a day, 340 stations × 3 products a day, the
11 feeds a day; figures random, shapes real) and runs Trino, PostgreSQL and Superset there on
free loopback ports for the measurement, stopped after. It deploys cockpit/*.yaml
(idempotent), asks Superset for the SQL of every chart (the chart data API, ``type=query``)
and times that SQL on Trino directly (best of --runs, no Superset cache in the way), then
renders the four dashboards (the first render warms Superset's and Trino's caches; the
best of --runs after it is reported, for a fresh browser's first page and for a page with
Superset's JavaScript already in the browser's cache, with where the page's time went from the
browser's Navigation and Resource Timing). Goals (issue #7): render ≤ 2 s, slowest query ≤ 5 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def year_of_ads(settings, year: int = 2024) -> dict[str, int]:
    """Write a year of the four cockpit ADS tables at scale 1's sizes; rows per table."""
    import datetime as dt
    import random
    from decimal import Decimal

    import pyarrow as pa
    from deltalake import write_deltalake

    from pipelines.generator.city import COUNTY_SEATS, STATIONS_AT_SCALE_1
    from pipelines.tables import conform_arrow, contract, contracts, table_path

    rnd = random.Random(7)
    days = [dt.date(year, 1, 1) + dt.timedelta(d) for d in range(366 if year % 4 == 0 else 365)]
    stamp = {"_computed_at": dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC), "_input_versions": "{}"}
    sectors = ("catering", "retail", "lodging", "scenic", "transport", "other")
    channels = ("wechat", "alipay", "ecny", "unionpay", "bankcard")
    tables: dict[str, list[dict]] = {"ads_trade_daily": [], "ads_fuel_inventory_check": []}
    for day in days:
        for district in COUNTY_SEATS:
            for sector in sectors:
                for channel in channels:
                    gross = rnd.randint(10_000, 5_000_000)
                    refund = gross // rnd.randint(20, 200)
                    tables["ads_trade_daily"].append(
                        {
                            "biz_date": day,
                            "district_code": district,
                            "sector": sector,
                            "channel": channel,
                            "txn_count": gross // 4_000,
                            "gross_fen": gross,
                            "refund_fen": refund,
                            "net_fen": gross - refund,
                            "active_merchants": rnd.randint(1, 400),
                        }
                    )
        for station in range(STATIONS_AT_SCALE_1):
            for product in ("92", "95", "0D"):
                sold = Decimal(rnd.randint(500_000, 8_000_000)) / 1000
                delivered = sold if rnd.random() < 0.3 else Decimal(0)
                gap = Decimal(rnd.randint(-2_000, 60_000 if rnd.random() < 0.02 else 2_000)) / 1000
                rate = float(gap / (sold + delivered))
                tables["ads_fuel_inventory_check"].append(
                    {
                        "biz_date": day,
                        "station_id": f"S{station:04d}",
                        "product_code": product,
                        "opening_liters": Decimal(20_000),
                        "delivered_liters": delivered,
                        "sold_liters": sold,
                        "closing_liters": Decimal(20_000) + delivered - sold - gap,
                        "gap_liters": gap,
                        "gap_rate": rate,
                        "flag": rate > 0.005,
                    }
                )
    feeds = [(c.feed.name, c.owner_department) for c in contracts(settings).values() if c.feed]
    tables["ads_quality_scorecard"] = [
        {
            "biz_date": day,
            "feed": feed,
            "owner_department": dept,
            "delivered": 10_000,
            "loaded": 10_000 - (q := rnd.randint(0, 300)),
            "quarantined": q,
            "completeness": 1 - q / 20_000,
            "validity": 1 - q / 10_000,
            "timeliness": 1.0,
            "checks_passed": 12,
            "checks_failed": int(q > 250),
        }
        for day in days
        for feed, dept in feeds
    ]
    tables["ads_economy_overview"] = [
        {
            "month": dt.date(y, m, 1),
            "trade_net_fen": rnd.randint(10**10, 3 * 10**10),
            "trade_mom": rnd.uniform(-0.1, 0.1),
            "trade_yoy": rnd.uniform(-0.1, 0.2),
            "active_merchants": rnd.randint(50_000, 60_000),
            "new_enterprises": rnd.randint(500, 900),
            "closed_enterprises": rnd.randint(100, 300),
            "backflow_rate": rnd.uniform(0.55, 0.7),
            "tax_total_yuan": Decimal(rnd.randint(10**8, 3 * 10**8)),
        }
        for y in (year - 1, year)
        for m in range(1, 13)
    ]
    for name, rows in tables.items():
        c = contract(name, settings)
        data = conform_arrow(pa.Table.from_pylist([{**r, **stamp} for r in rows]), c)
        write_deltalake(table_path(c, settings), data, mode="overwrite")
    return {name: len(rows) for name, rows in tables.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--year", action="store_true", help="a year-sized ADS layer of its own")
    args = parser.parse_args()
    if not args.year:
        measure(args.runs)
        return
    import os
    import shutil
    import socket

    root = Path("var/bench-cockpit").resolve()
    shutil.rmtree(root / "lakehouse", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)  # PostgreSQL runs as the postgres account when we are root
    os.environ.update(CITYLAKE_WAREHOUSE=str(root / "lakehouse"), CITYLAKE_VAR_DIR=str(root))
    for service in ("TRINO", "SUPERSET", "SOURCE_DB"):  # free ports: a running stack keeps its
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            os.environ[f"CITYLAKE_{service}__PORT"] = str(sock.getsockname()[1])
    from citylake import stack
    from citylake.settings import get_settings

    settings = get_settings()
    print(f"year of ADS rows written: {year_of_ads(settings)}", flush=True)
    try:
        stack.up(["trino", "superset"], settings)
        measure(args.runs)
    finally:
        stack.down(["trino", "superset", "postgres"], settings)


def measure(runs: int) -> None:
    from citylake import cockpit, trino
    from citylake.settings import get_settings

    settings = get_settings()
    deployed = cockpit.deploy(settings)
    rows = trino.query(
        "SELECT count(*) FROM ads.ads_trade_daily", settings
    ).rows  # what the cockpit reads
    print(f"warehouse {settings.warehouse}: ads_trade_daily has {rows[0][0]} rows")

    timings: list[tuple[float, str, int]] = []
    with cockpit.api(settings) as client:
        names = {
            c["id"]: c["slice_name"]
            for c in client.get("/api/v1/chart/?q=(page_size:100)").json()["result"]
        }
        for slug, chart_ids in deployed.charts.items():
            for chart_id in chart_ids:
                response = client.get(f"/api/v1/chart/{chart_id}/data/", params={"type": "query"})
                response.raise_for_status()
                for result in response.json()["result"]:
                    sql = result["query"].strip().rstrip(";")
                    best = float("inf")
                    count = 0
                    for _ in range(runs):
                        began = time.monotonic()
                        count = len(trino.query(sql, settings).rows)
                        best = min(best, time.monotonic() - began)
                    timings.append((best, f"{slug} / {names.get(chart_id, chart_id)}", count))
    timings.sort(reverse=True)
    print(f"{len(timings)} chart queries on Trino (best of {runs}); slowest:")
    for seconds, name, count in timings[:5]:
        print(f"  {seconds:7.3f} s  {name}  ({count} rows)")

    slugs = list(deployed.dashboards)
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as shots:
        cockpit.render(slugs, Path(shots), settings)  # warm-up: Superset's and Trino's caches
        pages: dict[str, list[dict]] = {slug: [] for slug in slugs}
        starts: list[float] = []
        for run in range(max(runs, len(slugs))):  # every dashboard once as the first page
            # Each run is a fresh browser (an empty cache); its first page loads Superset's
            # JavaScript bundle, the others find it in the browser's cache, as a user's next
            # page does. Rotate which dashboard comes first so each is measured both ways.
            order = slugs[run % len(slugs) :] + slugs[: run % len(slugs)]
            for i, page in enumerate(cockpit.render(order, Path(shots), settings)):
                if (
                    page["timed_out"]
                    or page["charts"] != len(deployed.charts[page["slug"]])
                    or page["drawn"] != page["charts"]
                ):
                    raise SystemExit(f"{page['slug']} did not draw every chart: {page}")
                page["first"] = i == 0
                pages[page["slug"]].append(page)
            starts.append(page["browser_start_seconds"])
    print(f"headless Chromium start (before any page): best {min(starts):.2f} s")
    print(
        "dashboard render until every chart is drawn (best of the runs, fresh browser's "
        "first page / page with the bundle in the browser's cache); where the time went, ms "
        "from navigation start (html, static bundle end, DOMContentLoaded, API calls, "
        "chart data requests):"
    )
    cold: list[float] = []
    warm: list[float] = []
    for slug, seen in pages.items():
        first = [p for p in seen if p["first"]]
        later = [p for p in seen if not p["first"]]
        line = f"  {slug:24s}"
        for label, group, into in (("first", first, cold), ("cached", later, warm)):
            if not group:
                continue
            best = min(group, key=lambda p: p["seconds"])
            into.append(best["seconds"])
            t = best["timing"]
            line += (
                f"  {label} {best['seconds']:6.3f} s [html {t['html_end']:.0f}, static "
                f"{(t['static'] or {}).get('end', 0):.0f}, dcl {t['dom_content_loaded']:.0f}, "
                f"api {(t['api'] or {}).get('end', 0):.0f}, chart data "
                f"{(t['chart_data'] or {}).get('start', 0):.0f}-"
                f"{(t['chart_data'] or {}).get('end', 0):.0f} "
                f"(x{(t['chart_data'] or {}).get('n', 0)})]"
            )
        print(line)
    print(
        f"slowest query {timings[0][0]:.3f} s (goal ≤ 5 s); slowest render "
        f"{max(cold or [0]):.3f} s in a fresh browser, {max(warm or [0]):.3f} s with the "
        "bundle cached (goal ≤ 2 s)"
    )


if __name__ == "__main__":
    main()
