"""Executor time of normalizing one city-day of every feed (pipelines/normalize.py).

    .venv/bin/python benchmarks/normalize.py --scale 1

One city-day of all eleven feeds is generated and ingested into a throwaway warehouse under
./var/bench-normalize (deleted first). Then each feed's committed ODS rows of that day go
through `normalize` against its DWD contract, and one aggregate reads every column it makes
(typed values, `_raw`, `_reject`), so Spark computes all of them. Each feed runs `--rounds`
times in one JVM; the best round is printed beside the plain read of the same rows, so what
is left is the rules' own cost. A build normalizes the same way, once per affected line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from warehouse import throwaway  # beside this script (its folder is on sys.path)

if TYPE_CHECKING:  # imported after the warehouse's environment is set, in main()
    from pyspark.sql import DataFrame

DAY = dt.date(2024, 11, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    root = throwaway("bench-normalize")
    import pyspark.sql.functions as F

    from citylake.settings import get_settings
    from citylake.spark import get_spark
    from pipelines import tables
    from pipelines.build import _ods, pin_inputs
    from pipelines.generator.cityday import FEEDS, generate_city, write_day
    from pipelines.ingest import ingest_files
    from pipelines.normalize import normalize
    from warehouse_layers.contract import TableContract

    t = time.monotonic()
    city_day = next(iter(generate_city(DAY, 1, scale=args.scale)))
    for feed, path in write_day(root / "landing", city_day, FEEDS).items():
        ingest_files(feed, [path])
    print(f"generate + ingest one city-day (scale {args.scale:g}) {time.monotonic() - t:8.1f} s")

    settings = get_settings()
    spark = get_spark(settings)
    versions = pin_inputs(spark, settings)
    # The DWD tables a feed's rows are normalized into: those whose columns carry rules, each
    # from its first upstream table, as the build's quarantine reads it (pipelines/build.py).
    normalized_into = {
        table.upstream[0]: table
        for table in tables.contracts(settings).values()
        if table.layer == "dwd" and any(column.rule for column in table.columns)
    }

    def best(frame_of: Callable[[], DataFrame]) -> float:
        took = []
        for _ in range(args.rounds):
            frame = frame_of()
            began = time.monotonic()
            frame.agg(*[F.count(F.lit(1)), *[F.count(c) for c in frame.columns]]).collect()
            took.append(time.monotonic() - began)
        return min(took)

    total = 0.0
    print(f"{'ODS table':<30} {'rows':>8} {'read':>7} {'normalize':>10}  (best of {args.rounds})")
    for ods, contract in sorted(normalized_into.items()):

        def rows(ods: str = ods) -> DataFrame:
            return _ods(spark, ods, versions, settings)

        def normalized_rows(contract: TableContract = contract) -> DataFrame:
            return normalize(rows(), contract)

        count = rows().count()
        read = best(rows)
        normalized = best(normalized_rows)
        total += normalized
        print(f"{ods:<30} {count:>8,} {read:>6.2f}s {normalized:>9.2f}s")
    print(f"{'all feeds':<30} {'':>8} {'':>7} {total:>9.2f}s")


if __name__ == "__main__":
    main()
