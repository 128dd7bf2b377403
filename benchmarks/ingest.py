"""Ingest throughput: CSV deliveries -> ODS Delta, against DuckDB's COPY CSV -> Parquet as peer.

    .venv/bin/python benchmarks/ingest.py --gigabytes 1 --workers 2

Generates payment-transaction deliveries (one city-day at scale 1 each, ~37 MB, with the
generator's usual share of dirty lines) until their total reaches `--gigabytes`; they are kept
under ./var/bench/ingest-landing and reused by later runs. Then, on the same files:

- citylake: `ingest_files` into a fresh warehouse (every line loaded or quarantined, one Delta
  commit per delivery, delivery log, exactly-once bookkeeping);
- DuckDB: `COPY (SELECT * FROM read_csv(..., all_varchar)) TO ... (FORMAT parquet)` per file,
  rejected lines kept in DuckDB's reject table (the closest equivalent of quarantining them).

Prints MB/s (10^6 bytes of delivered CSV per second of wall time) and rows/s for both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import time
from pathlib import Path

ROOT = Path("var/bench").resolve()
LANDING = ROOT / "ingest-landing"
FEED = "pay_transactions"
FIRST_DAY = dt.date(2025, 1, 1)


def deliveries(gigabytes: float) -> list[Path]:
    """Generated delivery files totalling at least `gigabytes` (reused when already there)."""
    from pipelines.generator import generate_payment

    files = sorted((LANDING / FEED).rglob("*.csv"))
    day = FIRST_DAY + dt.timedelta(days=len(files))
    while sum(f.stat().st_size for f in files) < gigabytes * 1e9:
        began = time.monotonic()
        # Each day its own seed: distinct content, so every file is a distinct delivery.
        generated = generate_payment(LANDING, day, 1, scale=1, seed=day.toordinal())
        files.extend(generated.files[FEED])
        print(f"  generated {day} in {time.monotonic() - began:.1f} s", flush=True)
        day += dt.timedelta(days=1)
    for stray in (LANDING / "merchant_registry",):  # only the transaction files are measured
        shutil.rmtree(stray, ignore_errors=True)
    return sorted(files)


def citylake(files: list[Path], workers: int) -> tuple[float, int, int]:
    from pipelines.ingest import ingest_files

    began = time.monotonic()
    results = ingest_files(FEED, files, workers=workers)
    elapsed = time.monotonic() - began
    assert all(r.reconciles for r in results), "a delivery did not reconcile"
    return elapsed, sum(r.loaded for r in results), sum(r.quarantined for r in results)


def duckdb_copy(files: list[Path], out: Path) -> tuple[float, int, int]:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    loaded = 0
    began = time.monotonic()
    for i, f in enumerate(files):
        con.execute(
            f"COPY (SELECT * FROM read_csv('{f}', header=true, all_varchar=true, "
            f"store_rejects=true)) TO '{out}/part-{i:05d}.parquet' (FORMAT parquet)"
        )
        loaded += con.execute(
            f"SELECT count(*) FROM read_parquet('{out}/part-{i:05d}.parquet')"
        ).fetchone()[0]
    elapsed = time.monotonic() - began
    rejected = con.execute("SELECT count(*) FROM reject_errors").fetchone()[0]
    return elapsed, loaded, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2, help="deliveries ingested at once")
    args = parser.parse_args()

    run = ROOT / "ingest-run"
    shutil.rmtree(run, ignore_errors=True)
    os.environ.update(
        CITYLAKE_WAREHOUSE=str(run / "lakehouse"),
        CITYLAKE_VAR_DIR=str(run),
        CITYLAKE_LANDING=str(LANDING),
    )
    print("deliveries:", flush=True)
    files = deliveries(args.gigabytes)
    size = sum(f.stat().st_size for f in files)
    print(f"  {len(files)} CSV files, {size / 1e9:.2f} GB", flush=True)

    # Create the three ODS tables first (Spark DDL from the contracts), outside the timing.
    from pipelines import tables

    for name in (f"ods_{FEED}", "ods_quarantine", "ods_delivery_log"):
        tables.ensure_native(tables.contract(name))

    def report(name: str, elapsed: float, loaded: int, rejected: int) -> None:
        print(
            f"{name:<34} {size / 1e6 / elapsed:8.1f} MB/s  {(loaded + rejected) / elapsed:>11,.0f}"
            f" rows/s  ({elapsed:.1f} s; {loaded:,} loaded, {rejected:,} rejected)",
            flush=True,
        )

    report(f"citylake CSV -> ODS Delta (x{args.workers})", *citylake(files, args.workers))
    report("DuckDB COPY CSV -> Parquet", *duckdb_copy(files, run / "duckdb"))


if __name__ == "__main__":
    main()
