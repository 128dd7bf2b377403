"""Shared fixtures: an isolated lakehouse per test, one Spark JVM per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from citylake.settings import Settings, get_settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointing the warehouse, landing zone and ./var of this test at `tmp_path`."""
    monkeypatch.setenv("CITYLAKE_WAREHOUSE", str(tmp_path / "lakehouse"))
    monkeypatch.setenv("CITYLAKE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("CITYLAKE_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """The JVM starts once (≈10 s); tests get isolation from their own warehouse paths."""
    from citylake.spark import get_spark

    var = tmp_path_factory.mktemp("spark-var")
    session = get_spark(Settings(var_dir=var, warehouse=str(var / "lakehouse")))
    yield session
    session.stop()
