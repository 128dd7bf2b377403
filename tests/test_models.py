"""The DWS/ADS models as a SQLMesh project: loaded from the contracts, unit-tested, with lineage.

Fast tier: SQLMesh loads the project on in-memory DuckDB (no JVM); the YAML tests beside each
model run there, and lineage comes from the parsed SQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from citylake.cli import app
from citylake.settings import Settings
from pipelines.modeling.headers import column_checks, header, time_column
from pipelines.modeling.lineage import column_lineage
from pipelines.modeling.project import context
from pipelines.tables import contracts

MODELS = sorted(n for n, c in contracts().items() if c.layer in ("dws", "ads"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    return context(Settings(var_dir=tmp_path_factory.mktemp("var")), offline=True)


def test_every_dws_and_ads_contract_is_a_loaded_model_with_sql_beside_it(project) -> None:
    loaded = {m.name.split(".")[-1] for m in project.models.values() if m.kind.is_materialized}
    assert loaded == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_model_has_its_contract_columns_audits_and_a_unit_test(project, name: str) -> None:
    model = project.get_model(f"{contracts()[name].layer}.{name}")
    table = contracts()[name]
    assert list(model.columns_to_types) == [c.name for c in table.columns]
    assert [a[0] for a in model.audits] == ["contract_rows"]
    assert model.kind.is_incremental_by_time_range == bool(time_column(table))
    spec = Path(__file__).parent.parent / "models" / table.layer / f"test_{name}.yaml"
    assert spec.exists(), f"models/{table.layer}/test_{name}.yaml is missing"


def test_yaml_unit_tests_pass(project) -> None:
    result = project.test()
    assert result.testsRun >= len(MODELS)
    assert result.wasSuccessful(), [str(f[1]) for f in result.failures + result.errors]


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """The YAML tests can fail: a copy of the project with one expectation off by one fen."""
    import shutil

    root = Path(__file__).parent.parent / "models"
    shutil.copytree(root, tmp_path / "models")
    spec = tmp_path / "models" / "ads" / "test_ads_trade_daily.yaml"
    spec.write_text(spec.read_text().replace("net_fen: 10000,", "net_fen: 10001,"))
    ctx = context(Settings(var_dir=tmp_path / "var", models_dir=tmp_path / "models"), offline=True)
    assert not ctx.test().wasSuccessful()


def test_header_says_the_contract_once() -> None:
    table = contracts()["ads_trade_daily"]
    text = header(table)
    assert "name ads.ads_trade_daily" in text
    assert "INCREMENTAL_BY_TIME_RANGE (time_column biz_date)" in text
    assert "partitioned_by (biz_date)" in text
    assert "audits (contract_rows(criteria := (`biz_date` IS NOT NULL, " in text
    assert "columns := (biz_date, district_code, sector, channel)))" in text
    assert "`sector` IN ('catering'" in text
    district = table.column("district_code")
    assert column_checks(district) == [
        "`district_code` IS NOT NULL",
        "(`district_code` IS NULL OR `district_code` RLIKE '^4311[0-9]{2}$')",
    ]
    assert "kind FULL" in header(contracts()["ads_fund_backflow_monthly"])
    monthly = header(contracts()["dws_enterprise_monthly"])  # month_column: month
    assert "INCREMENTAL_BY_TIME_RANGE (time_column month)" in monthly
    assert "interval_unit 'month',\n  allow_partials true,\n  start '2000-01-01'" in monthly


def test_column_lineage_reaches_dwd(tmp_path: Path) -> None:
    edges = {(e.source, e.target) for e in column_lineage(Settings(var_dir=tmp_path))}
    assert ("dws.dws_trade_merchant_daily.net_fen", "ads.ads_trade_daily.net_fen") in edges
    assert ("dwd.dwd_pay_transaction.gross_fen", "dws.dws_trade_merchant_daily.net_fen") in edges
    assert ("dwd.dwd_pay_transaction.refund_fen", "dws.dws_trade_merchant_daily.net_fen") in edges
    targets = {target.rsplit(".", 1)[0] for _, target in edges}
    assert targets == {f"{contracts()[n].layer}.{n}" for n in MODELS}


def test_cli_models_test_and_lineage() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["models", "test"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["models", "lineage", "ads_trade_daily"])
    assert result.exit_code == 0, result.output
    assert "dws.dws_trade_merchant_daily.net_fen -> ads.ads_trade_daily.net_fen" in result.output
