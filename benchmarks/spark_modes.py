"""How Spark runs under Airflow: a local SparkSession per task process, or one Spark Connect server.

Every Airflow task is a fresh process (LocalExecutor forks one per task). This script plays such
tasks, each in its own Python process, in both modes:

- ``local``: the task's process starts its own JVM (``citylake.spark.get_spark``, as today);
- ``connect``: one long-lived Spark Connect server with Delta (started here once, on 127.0.0.1,
  stopped by its pid); the task connects to it by setting ``CITYLAKE_SPARK__CONNECT_URL`` only.

Per task it measures the time to the first answered query (process start → session →
``SELECT 1``) and a representative task: read a Delta table of ``--rows`` transactions,
aggregate by day and district, write the result as Delta, read it back. Also the memory of
the JVM that served the task (the task's own JVM, or the server's). Nothing is asserted.

    CITYLAKE_SPARK__DRIVER_MEMORY=2g nice -n 19 .venv/bin/python benchmarks/spark_modes.py

The Connect client needs ``grpcio-status`` and ``zstandard`` beside the main venv's packages
(``pyspark[connect]``); give their folder with ``--client-path`` (e.g. a ``pip install --target``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()  # the task process's start: imports count as session start-up

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MiB of a process, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def task(work: Path, rows: int) -> dict[str, Any]:
    """One task process: session, first query, then the representative Delta work."""
    import psutil
    from pyspark.sql import functions as F

    from citylake.spark import get_spark

    spark = get_spark()
    spark.sql("SELECT 1").collect()
    first_query = time.perf_counter() - STARTED
    source = str(work / "transactions")
    if not (work / "transactions" / "_delta_log").is_dir():  # made once, untimed by callers
        spark.range(rows).selectExpr(
            "id AS txn_id",
            "concat('M', id % 5000) AS merchant_id",
            "cast(431102 + id % 12 AS string) AS district_code",
            "date_add(DATE'2024-11-01', cast(id % 3 AS int)) AS biz_date",
            "(id * 7919) % 100000 AS amount_fen",
        ).write.format("delta").mode("overwrite").save(source)
    started = time.perf_counter()
    target = str(work / f"daily_{os.getpid()}")
    (
        spark.read.format("delta")
        .load(source)
        .groupBy("biz_date", "district_code")
        .agg(
            F.sum("amount_fen").alias("amount_fen"),
            F.count("txn_id").alias("transactions"),
            F.approx_count_distinct("merchant_id").alias("merchants"),
        )
        .write.format("delta")
        .mode("overwrite")
        .save(target)
    )
    groups = spark.read.format("delta").load(target).count()
    work_seconds = time.perf_counter() - started
    jvm = [p for p in psutil.Process().children(recursive=True) if p.name() == "java"]
    jvm_mb = rss_mb(jvm[0].pid) if jvm else None
    return {"first_query_s": first_query, "task_s": work_seconds, "groups": groups, "jvm": jvm_mb}


def run_task(mode: str, work: Path, rows: int, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--task", "--work", str(work), "--rows", str(rows)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"{mode} task failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {mode}: {result}", flush=True)
    return result


def start_connect_server(port: int, log: Path) -> subprocess.Popen:
    """The Spark Connect server with Delta, on 127.0.0.1, configured like a local session."""
    import pyspark

    from citylake.jars import cached_jars, spark_artifacts
    from citylake.settings import get_settings
    from citylake.spark import spark_conf

    settings = get_settings()
    conf = spark_conf(settings) | {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.app.name": "citylake-connect",
    }
    jars = ",".join(str(p) for p in cached_jars(settings, spark_artifacts(settings)))
    command = [
        str(Path(pyspark.__file__).parent / "bin" / "spark-submit"),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master",
        settings.spark.master,
        "--driver-memory",
        settings.spark.driver_memory,
        "--jars",
        jars,
        *(arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")),
        "spark-internal",
    ]
    # The server's Python workers run the pipelines' UDFs: they need this Python and the
    # project's packages, as any Connect server running citylake's tasks does.
    env = os.environ | {
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
    }
    # spark-class execs java: the pid we get is the server JVM's.
    return subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, env=env
    )


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Connect server exited with {server.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"no Connect server on port {port} after {timeout} s")


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def summary(results: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in results]
    return (
        f"median {statistics.median(values):.1f} s (" + ", ".join(f"{v:.1f}" for v in values) + ")"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=PROJECT / "var" / "benchmarks" / "spark_modes")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--client-path", default="", help="extra PYTHONPATH for pyspark[connect]")
    args = parser.parse_args()
    if args.task:
        print(json.dumps(task(args.work, args.rows)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["CITYLAKE_VAR_DIR"] = str(args.work / "var")  # the server's state too
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLAKE_SPARK__CONNECT")}
    print(f"preparing {args.rows:,} rows of Delta under {args.work}", flush=True)
    run_task("prepare", args.work, args.rows, env)

    local = [run_task("local", args.work, args.rows, env) for _ in range(args.repeats)]

    port = free_port()
    started = time.perf_counter()
    server = start_connect_server(port, args.work / "connect-server.log")
    try:
        wait_for_port(port, server)
        server_up = time.perf_counter() - started
        connect_env = env | {
            "CITYLAKE_SPARK__CONNECT_URL": f"sc://127.0.0.1:{port}",
            "PYTHONPATH": os.pathsep.join(filter(None, [args.client_path, str(PROJECT)])),
        }
        warm = run_task("connect (first, warms the server)", args.work, args.rows, connect_env)
        connect = [
            run_task("connect", args.work, args.rows, connect_env) for _ in range(args.repeats)
        ]
        server_mb = rss_mb(server.pid)
    finally:
        stop(server)

    report = {
        "rows": args.rows,
        "cpus": os.cpu_count(),
        "local": local,
        "connect_server_start_s": server_up,
        "connect_first_task": warm,
        "connect": connect,
        "connect_server_rss_mb": server_mb,
    }
    print(json.dumps(report, indent=1))
    print(
        f"\nlocal   first query {summary(local, 'first_query_s')}, task {summary(local, 'task_s')}"
    )
    print(f"        task JVM resident/peak MiB: {[r['jvm'] for r in local]}")
    print(f"connect server up in {server_up:.1f} s; first task {warm['task_s']:.1f} s")
    print(f"connect first query {summary(connect, 'first_query_s')}")
    print(f"        task {summary(connect, 'task_s')}")
    print(f"        server resident/peak MiB: {server_mb[0]:.0f}/{server_mb[1]:.0f}")


if __name__ == "__main__":
    main()
