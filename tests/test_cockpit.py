"""The cockpit (issue #7): Superset on the project's PostgreSQL, dashboards from cockpit/*.yaml
over Trino, each chart's data API answering and each dashboard drawn in headless Chromium.

The cheap tests check the bundle `citylake cockpit deploy` imports. The stack test writes a
small warehouse of the four cockpit ADS tables (delta-rs, the contracts' schemas; no Spark
JVM: the rows are the subject's input, not what it computes), starts Trino with
tests/test_trino.py's fixture, then PostgreSQL and Superset on free loopback ports with
everything under the test's directory, deploys twice, and renders. Screenshots are saved in
the test's tmp dir (``cockpit-shots/``).
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import tempfile
import zipfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from deltalake import write_deltalake
from typer.testing import CliRunner

from citylake import cockpit, processes, stack, superset, trino
from citylake.cli import app
from citylake.settings import Settings, get_settings
from pipelines.tables import conform_arrow, contract, table_path
from tests.sockets import LOOPBACK, listening
from tests.source_db import alive, free_port
from tests.test_trino import trino_lake  # noqa: F401  (the fixture: Trino on a free port)

runner = CliRunner()
BOARDS = ("economy-overview", "trade-district-sector", "fuel-supervision", "data-quality")
COMPUTED = dt.datetime(2024, 11, 8, tzinfo=dt.UTC)


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


def _write(settings: Settings, table: str, rows: list[dict]) -> None:
    """One small ADS table on local disk in its contract's schema (delta-rs, no Spark)."""
    c = contract(table, settings)
    stamp = {"_computed_at": COMPUTED, "_input_versions": "{}"}
    data = pa.Table.from_pylist([{**row, **stamp} for row in rows])
    write_deltalake(table_path(c, settings), conform_arrow(data, c), mode="overwrite")


def _small_warehouse(settings: Settings) -> None:
    months = [dt.date(2024, m, 1) for m in (9, 10, 11)]
    _write(
        settings,
        "ads_economy_overview",
        [
            {
                "month": m,
                "trade_net_fen": 1_000_000 * (i + 1),
                "trade_mom": None if i == 0 else 1 / i,
                "trade_yoy": None,
                "active_merchants": 40 + i,
                "new_enterprises": 3 + i,
                "closed_enterprises": i,
                "backflow_rate": 0.6 + i / 100,
                "tax_total_yuan": Decimal("12345.67") * (i + 1),
            }
            for i, m in enumerate(months)
        ],
    )
    _write(
        settings,
        "ads_trade_daily",
        [
            {
                "biz_date": day,
                "district_code": district,
                "sector": sector,
                "channel": channel,
                "txn_count": 10,
                "gross_fen": 50_000,
                "refund_fen": 1_000,
                "net_fen": 49_000,
                "active_merchants": 3,
            }
            for day in (dt.date(2024, 11, 5), dt.date(2024, 11, 6))
            for district in ("431102", "431103")
            for sector, channel in (("catering", "wechat"), ("retail", "alipay"))
        ],
    )
    _write(
        settings,
        "ads_fuel_inventory_check",
        [
            {
                "biz_date": dt.date(2024, 11, 5),
                "station_id": station,
                "product_code": "92",
                "opening_liters": Decimal("10000.000"),
                "delivered_liters": Decimal("5000.000"),
                "sold_liters": Decimal("4000.000"),
                "closing_liters": closing,
                "gap_liters": Decimal("11000.000") - closing,
                "gap_rate": float(Decimal("11000.000") - closing) / 9000,
                "flag": float(Decimal("11000.000") - closing) / 9000 > 0.005,
            }
            for station, closing in (("S001", Decimal("11000.000")), ("S002", Decimal("10800.000")))
        ],
    )
    _write(
        settings,
        "ads_quality_scorecard",
        [
            {
                "biz_date": dt.date(2024, 11, 5),
                "feed": feed,
                "owner_department": department,
                "delivered": 100,
                "loaded": loaded,
                "quarantined": 100 - loaded,
                "completeness": 0.99,
                "validity": loaded / 100,
                "timeliness": 1.0,
                "checks_passed": 12,
                "checks_failed": 1 if loaded < 100 else 0,
            }
            for feed, department, loaded in (
                ("pay_transactions", "市商务局", 97),
                ("gov_tax_monthly", "市税务局", 100),
            )
        ],
    )


@pytest.mark.stack
@pytest.mark.timeout(900)  # Superset's first init ≈ 1 min; a loaded 2-core machine is slower
def test_cockpit_deploys_answers_and_renders(
    trino_lake: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    if not superset.installed():
        pytest.fail("Superset's environment is missing: run `citylake setup` (make setup)")
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.fail("Debian's chromium and chromium-driver are needed (make setup installs them)")
    # PostgreSQL runs as the postgres account when we are root: its ./var must be in a
    # directory that account can enter (pytest's tmp_path is private to us).
    var = Path(tempfile.mkdtemp(prefix="citylake-cockpit-"))
    var.chmod(0o711)
    monkeypatch.setenv("CITYLAKE_VAR_DIR", str(var))
    monkeypatch.setenv("CITYLAKE_SUPERSET__PORT", str(free_port()))
    monkeypatch.setenv("CITYLAKE_SOURCE_DB__PORT", str(free_port()))
    get_settings.cache_clear()
    settings = get_settings()
    _small_warehouse(settings)
    pid = None
    try:
        up = runner.invoke(app, ["up", "trino", "superset"])
        assert up.exit_code == 0, up.output + up.stderr
        # `up trino` registered the warehouse's tables
        assert {r[0] for r in trino.query("SHOW TABLES FROM ads", settings).rows} >= {
            "ads_economy_overview",
            "ads_trade_daily",
            "ads_fuel_inventory_check",
            "ads_quality_scorecard",
        }
        pid = processes.service("superset", settings).pid
        assert pid is not None
        assert {a for a, _ in listening(pid)} <= LOOPBACK  # gunicorn binds 127.0.0.1 only

        deployed = runner.invoke(app, ["cockpit", "deploy"])
        assert deployed.exit_code == 0, deployed.output
        first = cockpit.deploy(settings)  # a redeploy: the same objects, nothing duplicated
        assert sorted(first.dashboards) == sorted(BOARDS)
        with cockpit.api(settings) as client:
            assert client.get("/api/v1/dashboard/").json()["count"] == 4
            assert client.get("/api/v1/chart/").json()["count"] == 25
            assert client.get("/api/v1/dataset/").json()["count"] == 4
            assert client.get("/api/v1/database/").json()["count"] == 1
            for slug, chart_ids in first.charts.items():
                assert chart_ids, slug
                for chart_id in chart_ids:
                    rows = cockpit.chart_data(client, chart_id)
                    assert rows, f"{slug}: chart {chart_id} returned no rows"
            flagged = [
                c["id"]
                for c in client.get("/api/v1/dashboard/fuel-supervision/charts").json()["result"]
                if c["slice_name"] == "疑似漏报加油站"
            ]
            stations = [r["station_id"] for r in cockpit.chart_data(client, flagged[0])]
            assert stations == ["S002"]  # the table lists the flagged station only

        shots = tmp_path / "cockpit-shots"
        pages = cockpit.render(list(BOARDS), shots, settings)
        for page in pages:
            assert not page["timed_out"], page
            assert page["charts"] == len(first.charts[page["slug"]]), page
            assert page["drawn"] == page["charts"], page
            assert not page["alerts"] and not page["errors"], page
            assert Path(page["screenshot"]).stat().st_size > 10_000, page
    finally:
        # Trino too: it keeps its pid under this test's var, not the fixture's.
        stack.down(["trino", "superset", "postgres"], settings=settings)
        shutil.rmtree(var, ignore_errors=True)
    assert pid is not None and not alive(pid)
