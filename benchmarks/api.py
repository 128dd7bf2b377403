"""Load on the data-product API: TPS, p50 and p99 of authorized, granted, audited reads.

Starts a private PostgreSQL (grants, token, audit) and the API under uvicorn (workers for the
machine's 2 cores) on free loopback ports, over an ADS table written by delta-rs in a
temporary warehouse; drives it from a separate process (``wrk``, Debian package ``wrk``) with a
mix of pages and filters for a fixed duration; prints TPS, p50, p99, errors, the audit rows
written and the machine's load; stops everything by the pids it started.

    nice -n 19 .venv/bin/python benchmarks/api.py --duration 20 --connections 32
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/ads_tables.py: the same fixture table as the tests

# Requests the load generator rotates through: whole pages, paging, key filters.
PATHS = [
    "/products/ads_trade_daily",
    "/products/ads_trade_daily?limit=50&offset=100",
    "/products/ads_trade_daily?district_code=431103",
    "/products/ads_trade_daily?biz_date=2024-11-05",
    "/products/ads_trade_daily?biz_date_from=2024-11-10&biz_date_to=2024-11-12&limit=20",
    "/products/ads_trade_daily?sector=retail&channel=wechat&limit=10",
    "/products",
]
LUA = """
paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Authorization"] = "Bearer %s"})
end
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError("the API did not listen in time")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (2 cores)")
    parser.add_argument("--days", type=int, default=30, help="days in the ADS table (24 rows/day)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/api.py needs wrk: apt-get install wrk")

    from catalog import grants
    from citylake.postgres import start_source_db, stop_source_db
    from citylake.settings import ApiSettings, Settings, SourceDatabaseSettings
    from serving import tokens
    from tests.ads_tables import trade_daily_rows, write_ads

    var = Path(tempfile.mkdtemp(prefix="citylake-api-bench-"))
    var.chmod(0o711)  # PostgreSQL, run as its own account under root, passes through
    port = _free_port()
    # Limits out of the way: the benchmark measures serving, not 429s.
    api = ApiSettings(
        port=port,
        workers=args.workers,
        app_rate=1e6,
        app_burst=10**6,
        product_rate=1e6,
        product_burst=10**6,
    )
    settings = Settings(
        var_dir=var,
        warehouse=str(var / "lakehouse"),
        source_db=SourceDatabaseSettings(port=_free_port()),
        api=api,
    )
    server = None
    try:
        start_source_db(settings)
        write_ads(settings, "ads_trade_daily", trade_daily_rows(args.days))
        token = tokens.create("bench-app", "市税务局", settings=settings)
        gid = grants.request(
            "ads_trade_daily", department="市税务局", purpose="bench", by="bench", settings=settings
        )["id"]
        grants.approve(gid, by="bench", department="市商务局", settings=settings)

        env = os.environ | {
            "CITYLAKE_VAR_DIR": str(var),
            "CITYLAKE_WAREHOUSE": settings.warehouse,
            "CITYLAKE_SOURCE_DB__PORT": str(settings.source_db.port),
            "CITYLAKE_API__APP_RATE": str(api.app_rate),
            "CITYLAKE_API__APP_BURST": str(api.app_burst),
            "CITYLAKE_API__PRODUCT_RATE": str(api.product_rate),
            "CITYLAKE_API__PRODUCT_BURST": str(api.product_burst),
            "CITYLAKE_API__WORKERS": str(args.workers),
        }
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "serving.cli:asgi_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--log-level", "warning",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,  # its workers are in its process group: stopped together
        )  # fmt: skip
        _wait_port(port, server)
        script = var / "paths.lua"
        script.write_text(LUA % (", ".join(f'"{p}"' for p in PATHS), token))
        url = f"http://127.0.0.1:{port}"
        # Warm-up: every worker loads its snapshot and pages before the timed run.
        subprocess.run(
            ["wrk", "-t1", "-c4", "-d3s", "-s", str(script), url], check=True, capture_output=True
        )
        load_before = os.getloadavg()
        out = subprocess.run(
            [
                "wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                "-s", str(script), url,
            ],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        load_after = os.getloadavg()
        tps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sockets = re.search(r"Socket errors: (.*)", out)
        errors = int(non2xx.group(1)) if non2xx else 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)  # the group we started: uvicorn and workers
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        if sys.exc_info()[0] is not None:  # failing: the database goes with the rest
            stop_source_db(settings)
            shutil.rmtree(var, ignore_errors=True)
    try:
        time.sleep(1)
        with grants.connect(settings) as conn:
            audited = conn.execute(
                "SELECT count(*) AS n FROM access.api_audit WHERE app = 'bench-app'"
            ).fetchone()["n"]
    finally:
        stop_source_db(settings)
        shutil.rmtree(var, ignore_errors=True)
    print(
        f"api: {args.workers} workers, {args.connections} connections, {args.duration} s, "
        f"{args.days * 24} rows in ads_trade_daily"
    )
    print(f"  TPS {tps:,.0f}   p50 {p50:.2f} ms   p99 {p99:.2f} ms   requests {total:,}")
    print(f"  errors: non-2xx {errors}; socket {sockets.group(1) if sockets else 'none'}")
    print(f"  audit rows written: {audited:,} (timed run and warm-up)")
    print(
        "  load average before/after: "
        f"{load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
