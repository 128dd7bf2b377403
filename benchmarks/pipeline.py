"""Wall time of ODS → DWD → DWS → ADS for all feeds: a 30-day backfill, then one city-day.

    .venv/bin/python benchmarks/pipeline.py --scale 1 --backfill-days 30

The city's deliveries of every feed (all eleven) are generated and ingested into ODS first
(not timed as the pipeline: ingestion has its own benchmark, benchmarks/ingest.py), then:

1. the backfill: the 30 days built as `citylake build --from --to` builds a range, in one
   `build(first, last)` with every gate and model (`--chunk-days N` builds them N days per
   build instead, each on the ones before). All 30 days are in ODS before it starts, and the
   first registry delivery names every merchant, enterprise and station, whose first version
   affects its rows on every day delivered: so the first build makes the DWD facts of all 30
   days whatever its range (at scale 1: 961-1012 s for a first 3-day chunk, 1348 s for one
   build of all 30 days with their models, 2026-12-04/05; 910.6 s on 2026-12-06, when every
   delivery of a range that holds them all is taken whole). Past a million rows a fact table
   is written by Spark, not through the driver (pipelines/dwd/affected.py `DRIVER_ROWS`):
   before that, such a build ran the 4 GB driver out of heap and an 8 GB one past
   `spark.driver.maxResultSize`. Chunks cost more in all: each later chunk's registry changes
   (2 % of the merchants move district a day) rewrite the moved merchants' transactions from
   the move on through the 30th, so the later days' partitions are rewritten once per chunk
   (the second 3-day chunk took 360.8 s, when a move still rewrote the days before it too);
2. one city-day, as the city runs it: the next day's deliveries arrive, and `build(day, day)`
   brings them to the cockpit with 30 days of history in ODS and DWD;
3. that day rebuilt (identical inputs, warm JVM);
4. with `--rebuild-range`, every day but the first rebuilt in one build: a range within a
   longer history, whose lines the line index's passes find (pipelines/dwd/affected.py) where
   the first backfill takes every row whole. At scale 1 on 30 + 1 days: 1002.2 s [JVM CPU
   1861.3 s = JIT 164.4 + GC 257.6 + rest 1439.2] (payment DWD 684.3 s, orders 438.9 s, fuel
   253.7 s, models 64.2 s; 2026-12-06, the same build on the warehouse a run left); the 4 GB
   driver held it.

Beside each build it prints the CPU time the Spark JVM spent, how much of it went to the JIT
compiler and the garbage collector, and how many classes Spark compiled from generated code
(benchmarks/jvm_cpu.py): where a change acted, which wall time alone cannot say on a machine
whose runs vary by up to 15 %.

Runs in a throwaway warehouse under ./var/bench-pipeline (deleted first) on the embedded
defaults (CITYLAKE_SPARK__DRIVER_MEMORY and the other settings apply; CITYLAKE_UNITS_AT_ONCE=1
builds the domain units one after another, not side by side). Every delivery is landed as a
file here: the channels' own costs are measured in the ingest and channel tests, and the
warehouse cannot tell the channels apart. Generating and ingesting 30 city-days takes
7–9 minutes (393 s and 532 s), so the ingested ODS and the next day's files are kept under
./var/bench-pipeline-ods/ and reused by a later run with the same days and scale
(`--fresh` ingests again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse import throwaway  # beside this script (its folder is on sys.path)

if TYPE_CHECKING:  # imported after the warehouse's environment is set, in main()
    from pipelines.build import BuildResult

START = dt.date(2024, 11, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--backfill-days", type=int, default=30)
    parser.add_argument(
        "--chunk-days", type=int, default=0, help="days per build (0: the range in one build)"
    )
    parser.add_argument("--fresh", action="store_true", help="ingest again, ignore a kept ODS")
    parser.add_argument(
        "--rebuild-range",
        action="store_true",
        help="then rebuild every day but the first (a range within a longer history)",
    )
    args = parser.parse_args()
    if args.chunk_days < 0:
        parser.error("--chunk-days must be 0 (the range in one build) or more")

    days = max(1, args.backfill_days)
    kept = Path("var/bench-pipeline-ods").resolve() / f"{days}d-scale{args.scale:g}"
    root = throwaway("bench-pipeline")
    from jvm_cpu import jvm_cpu, spent  # beside this script (its folder is on sys.path)

    from citylake.spark import get_spark
    from pipelines.build import DWD_STEP, build
    from pipelines.generator.cityday import FEEDS, generate_city, write_day
    from pipelines.ingest import ingest_files

    def deliver(files: dict[str, Path]) -> None:
        for feed, path in files.items():
            ingest_files(feed, [path])

    def phase(name: str, began: float, extra: str = "") -> float:
        took = time.monotonic() - began
        print(f"{name:<44} {took:8.1f} s {extra}", flush=True)
        return took

    def steps(result: BuildResult) -> None:
        """Where a build's time went, step by step (pipelines/build.py `BuildResult.seconds`),
        with each DWD unit's time under the DWD step (`unit_seconds`)."""
        for step, took in result.seconds.items():
            print(f"    {step:<40} {took:8.1f} s", flush=True)
            if step.startswith(DWD_STEP):
                for unit, spent in result.unit_seconds.items():
                    print(f"      {unit:<38} {spent:8.1f} s", flush=True)

    t = time.monotonic()
    if kept.exists() and not args.fresh:
        shutil.copytree(kept, root, symlinks=True)
        phase(f"ODS of {days} city-days copied from a kept run", t, f"({kept})")
        nxt = {f.parent.name: f for f in sorted((root / "next").glob("*/*"))}
    else:
        rows = 0
        city = iter(generate_city(START, days + 1, scale=args.scale))
        for _ in range(days):
            city_day = next(city)
            deliver(write_day(root / "landing", city_day, FEEDS))
            rows += sum(len(city_day.tables[f]) for f in FEEDS)
        phase(f"generate + ingest {days} city-days (ODS)", t, f"({rows:,} rows delivered)")
        nxt = write_day(root / "next", next(city), FEEDS)
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(root, kept, symlinks=True, ignore=shutil.ignore_patterns("landing"))

    t = time.monotonic()
    get_spark()
    phase("spark session start", t)

    end = START + dt.timedelta(days=days - 1)
    t, cpu = time.monotonic(), jvm_cpu()
    first = START
    while first <= end:
        last = min(end, first + dt.timedelta(days=(args.chunk_days or days) - 1))
        began = time.monotonic()
        chunk = build(first, last)
        phase(f"  backfill chunk {first} … {last}", began)
        steps(chunk)
        first = last + dt.timedelta(days=1)
    backfill = phase(f"backfill {START} … {end} ({days} days)", t, spent(cpu))
    print(f"{'backfill per city-day':<44} {backfill / days:8.1f} s", flush=True)

    day = end + dt.timedelta(days=1)
    t = time.monotonic()
    deliver(nxt)
    phase(f"ingest {day}", t)
    t, cpu = time.monotonic(), jvm_cpu()
    result = build(day, day)
    phase(f"one city-day {day}: ODS → ADS, scale {args.scale:g}", t, f"(goal ≤ 60 s) {spent(cpu)}")
    steps(result)
    t, cpu = time.monotonic(), jvm_cpu()
    again = build(day, day)
    phase("the same day rebuilt (warm JVM)", t, spent(cpu))
    steps(again)
    print("rows written:", {k: v for k, v in sorted(result.rows.items())})
    if args.rebuild_range:
        # Not every delivery is of this range, so each fact feed's lines are found by the line
        # index's passes (pipelines/dwd/affected.py), here nearly all of them.
        first = START + dt.timedelta(days=1)
        t, cpu = time.monotonic(), jvm_cpu()
        rebuilt = build(first, day)
        phase(f"days {first} … {day} rebuilt", t, spent(cpu))
        steps(rebuilt)


if __name__ == "__main__":
    main()
