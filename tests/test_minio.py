"""MinIO as a citylake service, and the pipeline on an ``s3a://`` warehouse by settings alone.

Each test starts the project's pinned MinIO (built by the set-up) on a free loopback port with
its data under the test's directory and stops it by its pid.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyarrow import fs

from citylake import minio, stack, trino
from citylake.settings import Settings, TrinoSettings
from pipelines import tables
from tests.object_store import running_minio, s3_env
from tests.payment_files import TXN_HEADER, registry, txn, write
from tests.sockets import LOOPBACK, listening
from tests.source_db import alive, free_port

pytestmark = pytest.mark.stack

D5 = "2024-11-05"
CLI_CHILD = Path(__file__).with_name("cli_child.py")


def _store(settings: Settings) -> fs.S3FileSystem:
    s3 = settings.s3
    return fs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key.get_secret_value(),
        endpoint_override=s3.endpoint.removeprefix("http://"),
        scheme="http",
        region=s3.region,
    )


def test_up_creates_buckets_binds_loopback_and_down_stops_by_pid(tmp_path: Path) -> None:
    with running_minio(tmp_path / "var") as settings:
        (minio_stack,) = stack.select(["minio"])
        svc = minio_stack.start(settings)  # already running: reused, buckets re-checked
        first = svc.pid  # the record reads its pid file: keep the number
        assert first is not None
        # Loopback only, the API port only (no console listener).
        sockets = listening(first)
        assert {a for a, _ in sockets} <= LOOPBACK
        assert {p for _, p in sockets} == {minio.address(settings)[1]}
        store = _store(settings)
        buckets = {i.base_name for i in store.get_file_info(fs.FileSelector("/"))}
        assert buckets == {"lake"}  # s3.buckets and the warehouse's bucket, here the same
        store.create_dir("lake/probe")
        with store.open_output_stream("lake/probe/x.txt") as out:
            out.write(b"kept")
        assert (tmp_path / "var" / "minio" / "data" / "lake").is_dir()  # data under ./var

        assert stack.down(["minio"], settings=settings) == ["minio"]
        assert not alive(first)
        restarted = stack.up(["minio"], settings=settings)[0]
        assert restarted.pid not in (None, first)
        with store.open_input_stream("lake/probe/x.txt") as src:
            assert src.read() == b"kept"  # a restart keeps the objects


@pytest.mark.timeout(1800)  # three JVM starts and a build on object storage, on 2 cores
def test_pipeline_on_minio_by_settings_alone_and_trino_reads_it(tmp_path: Path) -> None:
    """Ingest and build a tiny payment day with CITYLAKE_WAREHOUSE=s3a://…: every table is an
    object in MinIO, none on local disk, and the ADS table reads back from the bucket, with
    delta-rs and through Trino."""
    with running_minio(tmp_path / "var") as settings:
        landing = Path(settings.landing)
        day = write(
            landing,
            "pay_transactions",
            D5,
            "d5.csv",
            TXN_HEADER,
            [
                txn("T1", "M1", "2024-11-05T12:00:00+08:00", 10000),
                txn("T2", "M1", "2024-11-05T23:59:59+08:00", 2500),
                txn("T3", "M2", "2024-11-05T08:00:00+08:00", 700, channel="alipay"),
            ],
        )
        env = {
            **os.environ,
            **s3_env(settings),
            "CITYLAKE_VAR_DIR": str(settings.var_dir),
            "CITYLAKE_LANDING": str(landing),
            "CITYLAKE_MODELS_START": D5,  # models fill from this day, not from 2024-01-01
        }
        # The user's commands, run in one child process (one JVM, not three): settings come
        # from its environment alone.
        commands = [
            ["ingest", "merchant_registry", str(registry(landing))],
            ["ingest", "pay_transactions", str(day)],
            ["build", "--from", D5, "--to", D5],
        ]
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(CLI_CHILD), json.dumps(commands)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=1700,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"ingest and build on MinIO: {time.monotonic() - began:.0f} s")  # shown with -s
        assert "s3a://lake/warehouse/ads/ads_trade_daily" in done.stdout

        # Nothing fell back to a local warehouse (the default is ./var/lakehouse of the cwd).
        objects = minio.root_dir(settings)
        assert not [p for p in tmp_path.rglob("_delta_log") if objects not in p.parents]
        ads = tables.contract("ads_trade_daily", settings)
        native = DeltaTable(
            tables.native_uri(ads, settings), storage_options=tables.storage_options(settings)
        )
        got = {
            (r["district_code"], r["sector"], r["channel"]): (r["txn_count"], r["gross_fen"])
            for r in native.to_pyarrow_table().to_pylist()
            if r["biz_date"] == dt.date(2024, 11, 5)
        }
        assert got == {
            ("431102", "catering", "wechat"): (2, 12500),
            ("431103", "retail", "alipay"): (1, 700),
        }
        log = _store(settings).get_file_info(
            fs.FileSelector("lake/warehouse/ads/ads_trade_daily/_delta_log")
        )
        assert any(i.base_name.endswith(".json") for i in log)

        # Trino's Delta Lake catalog reads the same table on MinIO (file metastore in the bucket).
        on_minio = settings.model_copy(update={"trino": TrinoSettings(port=free_port())})
        svc = trino.start_trino(on_minio)
        pid = svc.pid
        try:
            assert "ads.ads_trade_daily" in trino.register_warehouse(on_minio)
            answer = trino.query(
                "SELECT district_code, sector, channel, txn_count, gross_fen "
                "FROM ads.ads_trade_daily WHERE biz_date = DATE '2024-11-05' ORDER BY 1",
                on_minio,
            )
            assert answer.rows == [
                ["431102", "catering", "wechat", 2, 12500],
                ["431103", "retail", "alipay", 1, 700],
            ]
        finally:
            assert trino.stop_trino(on_minio)
        assert pid is not None and not alive(pid)


def test_setup_builds_the_pinned_server_once(tmp_path: Path) -> None:
    """The cached binary is the pinned version (the set-up built it; a second call is free)."""
    settings = Settings(var_dir=tmp_path / "var")
    server = minio.install(settings)
    assert server == settings.cache_dir / "minio" / minio.VERSION / "minio"
    out = subprocess.run([str(server), "--version"], capture_output=True, text=True, check=True)
    assert "minio version" in out.stdout
