"""The cockpit (issue #7): Superset on the project's PostgreSQL, dashboards from cockpit/*.yaml
over Trino, each chart's data API answering and each dashboard drawn in headless Chromium.

The cheap tests check the bundle `citylake cockpit deploy` imports. The stack test is the
issue's whole chain as a user runs it: `citylake up minio trino superset spark-connect` →
`citylake demo` writing its warehouse to MinIO (``s3a://``, by settings alone), every domain
built on the Spark Connect server as Airflow's tasks are (issue #6) → the build registers the tables
with Trino → `citylake cockpit deploy` (twice) → every chart's query answered by Trino through
Superset → each dashboard drawn in headless Chromium. Everything runs on free loopback ports
with its data under the test's directory; screenshots are kept in the test's tmp dir
(``cockpit-shots/``). It is also the demo's test (one demo run in the suite, not two).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from citylake import cockpit, processes, stack, superset, trino
from citylake.cli import app
from citylake.settings import Settings, get_settings
from pipelines.tables import contract
from tests.object_store import WAREHOUSE
from tests.sockets import LOOPBACK, listening
from tests.source_db import alive, free_port

runner = CliRunner()
CLI_CHILD = Path(__file__).with_name("cli_child.py")
BOARDS = ("economy-overview", "trade-district-sector", "fuel-supervision", "data-quality")


def _bundle_files(settings: Settings) -> dict[str, dict]:
    with zipfile.ZipFile(io.BytesIO(cockpit.bundle(settings))) as archive:
        return {
            name.removeprefix("cockpit/"): yaml.safe_load(archive.read(name))
            for name in archive.namelist()
        }


def test_bundle_is_stable_and_follows_the_contracts(lake: Settings) -> None:
    first, again = _bundle_files(lake), _bundle_files(lake)
    strip = {"metadata.yaml"}  # only its timestamp differs
    assert {k: v for k, v in first.items() if k not in strip} == {
        k: v for k, v in again.items() if k not in strip
    }
    boards = [v for k, v in first.items() if k.startswith("dashboards/")]
    assert sorted(b["slug"] for b in boards) == sorted(BOARDS)
    assert {b["dashboard_title"] for b in boards} == {
        "经济总览",
        "交易 区县×行业",
        "成品油监管",
        "数据质量",
    }
    datasets = {v["table_name"]: v for k, v in first.items() if k.startswith("datasets/")}
    for name, dataset in datasets.items():
        assert [c["column_name"] for c in dataset["columns"]] == [
            c.name for c in contract(name, lake).columns
        ]
        assert dataset["catalog"] == lake.trino.catalog and dataset["schema"] == "ads"
    charts = [v for k, v in first.items() if k.startswith("charts/")]
    assert len({c["uuid"] for c in charts}) == len(charts) == 25
    for chart in charts:
        assert chart["query_context"]  # the chart data API needs it
    database = first["databases/citylake_trino.yaml"]
    assert database["sqlalchemy_uri"] == (
        f"trino://{lake.trino.user}@127.0.0.1:{lake.trino.port}/{lake.trino.catalog}"
    )


def test_a_year_of_a_daily_line_is_not_cut_short(lake: Settings) -> None:
    # A year of 每日净交易额 is 366 days × 6 sectors: at the old 1,000-row cap the chart's query
    # kept the 1,000 largest points and drew a year with holes (benchmarks/cockpit.py --year).
    charts = [c for board in cockpit.dashboards() for c in board.charts]
    daily = next(c for c in charts if c.kind == "line" and c.grain == "P1D")
    assert daily.limit >= 366 * 6
    assert daily.limit == superset.ROW_LIMIT
    bundle = _bundle_files(lake)
    drawn = next(
        v for k, v in bundle.items() if k.startswith("charts/") and v["slice_name"] == daily.name
    )
    assert drawn["params"]["row_limit"] == superset.ROW_LIMIT
    assert json.loads(drawn["query_context"])["queries"][0]["row_limit"] == superset.ROW_LIMIT
    assert drawn["params"]["markerEnabled"] is False  # 2,196 markers cost the page its time


def test_a_table_pages_through_every_row_on_the_server(lake: Settings) -> None:
    # A year of flagged station-days is about 4,000 rows: drawn in the browser, the first 1,000
    # (the old cap) cost the page a 0.7-1.0 s task and the rest were never seen. Each page is a
    # query, and the pages reach every row up to Superset's cap.
    bundle = _bundle_files(lake)
    names = {c.name for b in cockpit.dashboards() for c in b.charts if c.kind == "table"}
    tables = [v for k, v in bundle.items() if k.startswith("charts/") and v["slice_name"] in names]
    assert len(tables) == len(names) >= 3
    for chart in tables:
        params = chart["params"]
        assert params["server_pagination"] is True, chart["slice_name"]
        assert (params["server_page_length"], params["row_limit"]) == (10, superset.ROW_LIMIT)
        assert params["include_search"] is True


def test_a_chart_on_an_unknown_column_is_refused(lake: Settings) -> None:
    board = cockpit.Dashboard(
        slug="x",
        title="x",
        charts=[
            cockpit.Chart(
                name="bad", table="ads_trade_daily", kind="table", columns=["no_such_column"]
            )
        ],
    )
    with pytest.raises(cockpit.CockpitError, match="no_such_column"):
        cockpit.bundle(lake, [board])


def test_superset_config_sets_the_chinese_ui(lake: Settings) -> None:
    text = superset.config_text(lake)
    namespace: dict = {}
    exec(compile(text, "superset_config.py", "exec"), namespace)  # it is plain literals
    assert namespace["BABEL_DEFAULT_LOCALE"] == "zh"
    assert set(namespace["LANGUAGES"]) == {"zh", "en"}
    assert namespace["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg2://superset:")
    assert len(namespace["SECRET_KEY"]) >= 32  # generated once into var/superset/secrets.json
    # Measured cheaper pages (benchmarks/cockpit.py): no per-request gzip, a real app cache.
    assert namespace["COMPRESS_REGISTER"] is False
    assert namespace["CACHE_CONFIG"]["CACHE_TYPE"] == "FileSystemCache"
    assert namespace["CACHE_CONFIG"]["CACHE_DIR"] != namespace["DATA_CACHE_CONFIG"]["CACHE_DIR"]


# The smallest demo that still gives every chart rows: one city-day (tiny scale still plants a
# flagged fuel station and the month's tax and enterprise deliveries).
DEMO = ["demo", "--days", "1", "--scale", "0.003"]


def _demo_on_minio(cwd: Path, connect_url: str) -> str:
    """`citylake demo` in a child process with this test's environment: the settings (an
    ``s3a://`` warehouse on MinIO, Spark at the stack's Spark Connect server) come from it
    alone, as for a user's `make demo` and for Airflow's tasks under `citylake up`. The child
    has no Java (JAVA_HOME names nothing): a local JVM could not start, so every domain's
    build, gate and model ran on the server."""
    began = time.monotonic()
    env = {**os.environ, "CITYLAKE_SPARK__CONNECT_URL": connect_url, "JAVA_HOME": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, str(CLI_CHILD), json.dumps([DEMO])],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    print(f"demo on MinIO: {time.monotonic() - began:.0f} s")  # shown with -s
    return done.stdout


@pytest.mark.stack
@pytest.mark.spark
@pytest.mark.timeout(1800)  # Superset's first init, a Spark JVM and Trino's, on 2 loaded cores
def test_up_demo_on_minio_then_the_cockpit_answers_and_renders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not superset.installed():
        pytest.fail("Superset's environment is missing: run `citylake setup` (make setup)")
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.fail("Debian's chromium and chromium-driver are needed (make setup installs them)")
    # PostgreSQL runs as the postgres account when we are root: its ./var must be in a
    # directory that account can enter (pytest's tmp_path is private to us).
    var = Path(tempfile.mkdtemp(prefix="citylake-cockpit-"))
    var.chmod(0o711)
    for name, value in {
        "VAR_DIR": var,
        "WAREHOUSE": WAREHOUSE,
        "LANDING": var / "landing",
        "S3__ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "SOURCE_DB__PORT": free_port(),
        "EXCHANGE__URL": f"http://127.0.0.1:{free_port()}",
        "TRINO__PORT": free_port(),
        "SUPERSET__PORT": free_port(),
        "SPARK__CONNECT_PORT": free_port(),
    }.items():
        monkeypatch.setenv(f"CITYLAKE_{name}", str(value))
    get_settings.cache_clear()
    settings = get_settings()
    pid = None
    try:
        up = runner.invoke(app, ["up", "minio", "trino", "superset", "spark-connect"])
        assert up.exit_code == 0, up.output + up.stderr
        pid = processes.service("superset", settings).pid
        assert pid is not None
        assert {a for a, _ in listening(pid)} <= LOOPBACK  # gunicorn binds 127.0.0.1 only

        out = _demo_on_minio(tmp_path, f"sc://127.0.0.1:{settings.spark.connect_port}")
        assert "reconciliation" in out and "NO" not in out
        assert f"ADS table ads_trade_daily: {WAREHOUSE}/ads/ads_trade_daily" in out
        for feed in ("gov_tax_monthly", "pay_settlements", "fuel_tank_readings"):
            assert feed in out  # every channel delivered
        assert sorted(p.suffix for p in (var / "reports").iterdir()) == [".docx", ".xlsx"]
        assert not processes.service("gov-exchange", settings).running  # the demo's own source
        # Every table is an object in MinIO: nothing fell back to a local warehouse.
        objects = var / "minio"
        assert [p for p in var.rglob("_delta_log") if objects not in p.parents] == []
        assert list((objects / "data" / "lake" / "warehouse" / "ads").iterdir())

        # The build registered its tables with the running Trino; SQL reads them off MinIO.
        flagged = trino.query(
            "SELECT station_id FROM ads.ads_fuel_inventory_check WHERE flag", settings
        ).rows
        assert flagged, "the demo plants a fuel station with a gap over 0.5 %"

        deployed = runner.invoke(app, ["cockpit", "deploy"])
        assert deployed.exit_code == 0, deployed.output
        first = cockpit.deploy(settings)  # a redeploy: the same objects, nothing duplicated
        assert sorted(first.dashboards) == sorted(BOARDS)
        with cockpit.api(settings) as client:
            assert client.get("/api/v1/dashboard/").json()["count"] == 4
            assert client.get("/api/v1/chart/").json()["count"] == 25
            assert client.get("/api/v1/dataset/").json()["count"] == 4
            assert client.get("/api/v1/database/").json()["count"] == 1
            # Each chart's saved query, run by Superset on Trino, answers with rows.
            for slug, chart_ids in first.charts.items():
                assert chart_ids, slug
                for chart_id in chart_ids:
                    rows = cockpit.chart_data(client, chart_id)
                    assert rows, f"{slug}: chart {chart_id} returned no rows"
            table = [
                c["id"]
                for c in client.get("/api/v1/dashboard/fuel-supervision/charts").json()["result"]
                if c["slice_name"] == "疑似漏报加油站"
            ]
            listed = {r["station_id"] for r in cockpit.chart_data(client, table[0])}
            assert listed == {r[0] for r in flagged}  # the flagged stations, and only they

        shots = tmp_path / "cockpit-shots"
        pages = cockpit.render(list(BOARDS), shots, settings)
        for page in pages:
            assert not page["timed_out"], page
            assert page["charts"] == len(first.charts[page["slug"]]), page
            assert page["drawn"] == page["charts"], page
            assert not page["alerts"] and not page["errors"], page
            assert Path(page["screenshot"]).stat().st_size > 10_000, page
    finally:
        stack.down(
            ["superset", "trino", "spark-connect", "gov-exchange", "postgres", "minio"],
            settings=settings,
        )
        get_settings.cache_clear()
        shutil.rmtree(var, ignore_errors=True)
    assert pid is not None and not alive(pid)
