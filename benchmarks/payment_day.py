"""Wall time of the payment path for city-days at a given scale: generate, ingest, build.

    .venv/bin/python benchmarks/payment_day.py --scale 1 --days 1

Prints one line per phase and the rows per second of ingest. Runs in a throwaway warehouse
under ./var/bench (deleted first), on the embedded defaults unless CITYLAKE_* says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from warehouse import throwaway  # beside this script (its folder is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()

    root = throwaway("bench")

    from citylake.spark import get_spark
    from pipelines.build import build
    from pipelines.generator import generate_payment
    from pipelines.ingest import ingest_files

    def phase(name: str, began: float, extra: str = "") -> None:
        print(f"{name:<28} {time.monotonic() - began:8.1f} s {extra}", flush=True)

    t = time.monotonic()
    generated = generate_payment(
        root / "landing", dt.date(2024, 11, 5), args.days, scale=args.scale
    )
    rows = generated.truth["txn_rows_delivered"] + generated.truth["merchant_versions"]
    phase("generate", t, f"({rows:,} rows)")
    t = time.monotonic()
    get_spark()
    phase("spark session start", t)
    t = time.monotonic()
    for feed in ("merchant_registry", "pay_transactions"):
        ingest_files(feed, generated.files[feed])
    elapsed = time.monotonic() - t
    phase("ingest (ODS)", t, f"({rows / elapsed:,.0f} rows/s)")
    t = time.monotonic()
    build()
    phase("build (DWD→DWS→ADS + gates)", t)


if __name__ == "__main__":
    main()
