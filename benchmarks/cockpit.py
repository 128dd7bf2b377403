"""Cockpit response times: each dashboard's render in headless Chromium, and the slowest of the
cockpit's chart queries run through Trino.

    .venv/bin/python benchmarks/cockpit.py [--runs 3]

Uses the running stack (`citylake up trino superset`) on whatever warehouse the settings name
(build it first, e.g. `citylake demo` or benchmarks/pipeline.py); deploys cockpit/*.yaml
(idempotent), asks Superset for the SQL of every chart (the chart data API, ``type=query``)
and times that SQL on Trino directly (best of --runs, no Superset cache in the way), then
renders the four dashboards (the first render warms Superset's and Trino's caches; the
best of --runs after it is reported). Goals (issue #7): render ≤ 2 s, slowest query ≤ 5 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

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
                    for _ in range(args.runs):
                        began = time.monotonic()
                        count = len(trino.query(sql, settings).rows)
                        best = min(best, time.monotonic() - began)
                    timings.append((best, f"{slug} / {names.get(chart_id, chart_id)}", count))
    timings.sort(reverse=True)
    print(f"{len(timings)} chart queries on Trino (best of {args.runs}); slowest:")
    for seconds, name, count in timings[:5]:
        print(f"  {seconds:7.3f} s  {name}  ({count} rows)")

    slugs = list(deployed.dashboards)
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as shots:
        cockpit.render(slugs, Path(shots), settings)  # warm-up
        best: dict[str, float] = {}
        for _ in range(args.runs):
            for page in cockpit.render(slugs, Path(shots), settings):
                if page["timed_out"] or page["drawn"] != page["charts"]:
                    raise SystemExit(f"{page['slug']} did not draw every chart: {page}")
                best[page["slug"]] = min(best.get(page["slug"], float("inf")), page["seconds"])
    print(f"dashboard render, all charts drawn (headless Chromium, best of {args.runs}):")
    for slug, seconds in best.items():
        print(f"  {seconds:7.3f} s  {slug}")
    print(
        f"slowest query {timings[0][0]:.3f} s (goal ≤ 5 s); slowest render "
        f"{max(best.values()):.3f} s (goal ≤ 2 s)"
    )


if __name__ == "__main__":
    main()
