"""Trino as a citylake service: the Delta Lake catalog over the local warehouse, tables
registered after each build, and `citylake sql` answering on an ADS table.

The test starts the project's pinned Trino (fetched by the set-up) on a free loopback port with
its etc/ and data under the test's directory and stops it by its pid.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citylake import processes, stack, trino
from citylake.cli import app
from citylake.settings import Settings, get_settings
from pipelines.ingest import ingest_file
from tests.payment_files import TXN_HEADER, registry, txn, write
from tests.sockets import LOOPBACK, listening
from tests.source_db import alive, free_port

pytestmark = pytest.mark.stack

D5 = "2024-11-05"
runner = CliRunner()
ADS_SQL = (
    "SELECT district_code, sector, channel, txn_count, gross_fen FROM ads.ads_trade_daily "
    "WHERE biz_date = DATE '2024-11-05' ORDER BY district_code"
)


@pytest.fixture
def trino_lake(lake: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test's lakehouse, with Trino on a free port (stopped by pid afterwards)."""
    monkeypatch.setenv("CITYLAKE_TRINO__PORT", str(free_port()))
    monkeypatch.setenv("CITYLAKE_MODELS_START", D5)  # models fill from this day only
    get_settings.cache_clear()
    settings = get_settings()
    try:
        yield settings
    finally:
        stack.down(["trino"], settings=settings)
        get_settings.cache_clear()


def _deliver(settings: Settings, name: str, rows: list[list[str]]) -> None:
    path = write(Path(settings.landing), "pay_transactions", D5, name, TXN_HEADER, rows)
    ingest_file(path, "pay_transactions")


def _sql_rows(statement: str) -> list[dict]:
    result = runner.invoke(app, ["sql", "--json", statement])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


@pytest.mark.timeout(1800)  # a JVM for Spark and one for Trino, two builds, on 2 cores
def test_build_registers_tables_and_sql_answers_on_ads(spark, trino_lake: Settings) -> None:
    settings = trino_lake
    up = runner.invoke(app, ["up", "trino"])
    assert up.exit_code == 0, up.output
    pid = processes.service("trino", settings).pid
    assert pid is not None
    sockets = listening(pid)
    assert {a for a, _ in sockets} <= LOOPBACK  # bound to 127.0.0.1 only
    assert settings.trino.port in {p for _, p in sockets}
    assert (settings.var_dir / "trino" / "etc" / "catalog" / "lake.properties").is_file()

    ingest_file(registry(Path(settings.landing)), "merchant_registry")
    _deliver(
        settings,
        "d5.csv",
        [
            txn("T1", "M1", "2024-11-05T12:00:00+08:00", 10000),
            txn("T2", "M1", "2024-11-05T23:59:59+08:00", 2500),
            txn("T3", "M2", "2024-11-05T08:00:00+08:00", 700, channel="alipay"),
        ],
    )
    built = runner.invoke(app, ["build", "--from", D5, "--to", D5])
    assert built.exit_code == 0, built.output
    assert "registered in Trino (lake)" in built.output and "ads.ads_trade_daily" in built.output

    assert _sql_rows(ADS_SQL) == [
        {
            "district_code": "431102",
            "sector": "catering",
            "channel": "wechat",
            "txn_count": 2,
            "gross_fen": 12500,
        },
        {
            "district_code": "431103",
            "sector": "retail",
            "channel": "alipay",
            "txn_count": 1,
            "gross_fen": 700,
        },
    ]

    # A later delivery and rebuild: the registered table shows the new snapshot by itself.
    _deliver(settings, "d5-late.csv", [txn("T4", "M1", "2024-11-05T18:00:00+08:00", 5000)])
    rebuilt = runner.invoke(app, ["build", "--from", D5, "--to", D5])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "registered in Trino" not in rebuilt.output  # nothing new to register
    first = _sql_rows(ADS_SQL)[0]
    assert (first["txn_count"], first["gross_fen"]) == (3, 17500)

    table = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM ods.ods_pay_transactions"])
    assert table.exit_code == 0 and "(1 rows)" in table.output, table.output

    # The Trino CLI jar the set-up fetched (what `citylake sql` without a query opens).
    cli = subprocess.run(
        [*trino.cli_argv(settings), "--execute", "SELECT count(*) FROM ads.ads_trade_daily"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 0 and cli.stdout.strip() == '"2"', cli.stdout + cli.stderr

    down = runner.invoke(app, ["down", "trino"])
    assert down.exit_code == 0 and "trino" in down.output
    assert not alive(pid)
    failed = runner.invoke(app, ["sql", "SELECT 1"])
    assert failed.exit_code == 1  # nothing listens: a clear error, not a trace
