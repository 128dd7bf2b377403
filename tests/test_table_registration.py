"""Contract tables are registered in the session catalog by path: a stale registration moves
along with the warehouse, even when its old data is gone, and a managed table is never dropped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from citylake.settings import Settings
from pipelines import tables
from pipelines.modeling import engine

pytestmark = pytest.mark.spark

TABLE = "ads_trade_daily"


def _settings(root: Path) -> Settings:
    return Settings(
        var_dir=root / "var", warehouse=str(root / "lakehouse"), landing=str(root / "in")
    )


def _location(spark, name: str) -> str:
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    return next(r.data_type for r in rows if r.col_name == "Location")


def test_a_registration_follows_the_warehouse_even_when_the_old_one_was_removed(
    spark, tmp_path: Path
) -> None:
    contract = tables.contract(TABLE)
    first, second = _settings(tmp_path / "a"), _settings(tmp_path / "b")
    engine.register_tables(spark, [contract], first)
    shutil.rmtree(first.warehouse)  # a finished test's temp dir: the name now points at nothing
    engine.register_tables(spark, [contract], second)
    assert _location(spark, f"ads.{TABLE}").endswith(f"{tmp_path}/b/lakehouse/ads/{TABLE}")


def test_a_managed_table_of_the_same_name_is_refused_not_dropped(spark, tmp_path: Path) -> None:
    contract = tables.contract(TABLE)
    spark.sql("CREATE SCHEMA IF NOT EXISTS ads")
    spark.sql(f"ALTER SCHEMA ads SET LOCATION '{tmp_path / 'managed'}'")
    spark.sql(f"DROP TABLE IF EXISTS ads.{TABLE}")
    engine._REGISTERED.pop("ads", None)
    engine._REGISTERED.pop(f"ads.{TABLE}", None)
    spark.sql(f"CREATE TABLE ads.{TABLE} (x INT) USING DELTA")  # managed: DROP would delete it
    try:
        with pytest.raises(RuntimeError, match="managed table"):
            engine.register_tables(spark, [contract], _settings(tmp_path))
        assert spark.table(f"ads.{TABLE}").columns == ["x"]
    finally:
        spark.sql(f"DROP TABLE ads.{TABLE}")
