"""Wall time of the DWS/ADS models step alone, model by model, on a warehouse a build left.

    .venv/bin/python benchmarks/models.py --from var/s13-31d --day 2024-12-05 --rounds 2

Copies the warehouse (``--from``: a directory holding ``lakehouse/`` and the SQLMesh state of
the builds that made it, such as ./var/bench-pipeline after benchmarks/pipeline.py) to
./var/bench-models, then restates every model for ``--day`` the way a build does after its DWD
units (`build_models`: one deploy plan, one restatement plan), ``--rounds`` times in one JVM.
Each round prints the step's wall time and JVM CPU, then each model's evaluation and audit:
when it started within the step, how long it took, and on which of SQLMesh's threads. The
first round pays the JIT warm-up; a city's daily build runs in a warm JVM.

What the step costs is not the sum of the models: SQLMesh runs `units_at_once` of them side by
side on one Spark session, and a model waits for its inputs, so the chain of dependent models
(dws_trade_merchant_daily → dws_enterprise_monthly → ads_inclusion_candidates) can set the
step's length. The per-model lines show where the chain and the side-by-side models meet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warehouse import throwaway  # beside this script (its folder is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True)
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not (args.source / "lakehouse").is_dir():
        parser.error(f"{args.source} holds no lakehouse/: name a warehouse a build left")

    root = throwaway("bench-models")
    t = time.monotonic()
    shutil.copytree(args.source, root, symlinks=True)
    print(f"{'copy ' + str(args.source):<44} {time.monotonic() - t:8.1f} s", flush=True)

    from jvm_cpu import jvm_cpu, spent  # beside this script
    from sqlmesh.core.snapshot.evaluator import SnapshotEvaluator

    from citylake.settings import get_settings
    from citylake.spark import get_spark
    from pipelines import tables
    from pipelines.modeling.runner import build_models

    settings = get_settings()
    get_spark(settings)
    # Every DWD table: build_models keeps those some model reads, as after a full rebuild.
    dwd = sorted(n for n, c in tables.contracts(settings).items() if c.layer == "dwd")
    timings: list[tuple[float, float, str, str, str]] = []
    began = [0.0]

    def timed(method: str) -> None:
        original: Callable[..., Any] = getattr(SnapshotEvaluator, method)

        @functools.wraps(original)
        def run(self: SnapshotEvaluator, *args: Any, **kwargs: Any) -> Any:
            snapshot = kwargs.get("snapshot") or args[0]
            start = time.monotonic()
            try:
                return original(self, *args, **kwargs)
            finally:
                thread = threading.current_thread().name
                name = snapshot.name.split(".")[-1].strip('"')
                timings.append((start - began[0], time.monotonic() - start, thread, method, name))

        setattr(SnapshotEvaluator, method, run)

    timed("evaluate")
    timed("audit")
    for round_ in range(1, args.rounds + 1):
        timings.clear()
        cpu = jvm_cpu()
        began[0] = time.monotonic()
        touched = build_models(dwd, [(args.day, args.day)], {}, settings)
        took = time.monotonic() - began[0]
        print(f"round {round_}: {len(touched)} models of {args.day} {took:8.1f} s {spent(cpu)}")
        threads = {name: f"t{i}" for i, name in enumerate(sorted({x[2] for x in timings}))}
        for at, seconds, thread, method, name in sorted(timings):
            print(f"  {at:7.1f} +{seconds:6.1f} s  {threads[thread]}  {method:<8} {name}")
        print(flush=True)


if __name__ == "__main__":
    main()
