"""The SQLMesh project of a citylake deployment: configuration and context from Settings.

Gateways:
- ``spark``: the warehouse's engine (citylake's SparkSession), state in DuckDB under
  ``var/sqlmesh`` (embedded, nothing to run);
- ``offline``: an in-memory DuckDB that only loads the project, for unit tests and lineage
  without a JVM. It is the only gateway of its config: SQLMesh opens every listed gateway.

Prod has no virtual layer (``dev_only``): the table SQLMesh writes is the real
``<layer>.<table>`` at ``<warehouse>/<layer>/<table>``, never a view Trino could not read.
"""

from __future__ import annotations

import logging

from sqlmesh import Context
from sqlmesh.core import constants as sqlmesh_constants
from sqlmesh.core.config import (
    Config,
    DuckDBConnectionConfig,
    GatewayConfig,
    ModelDefaultsConfig,
)

from citylake.settings import Settings
from pipelines.modeling.engine import DeltaSparkConnectionConfig
from pipelines.modeling.loader import CONTRACTS_DIR_KEY, CitylakeLoader

PROJECT = "citylake"
SPARK_CATALOG = "spark_catalog"


def config(settings: Settings, *, offline: bool = False) -> Config:
    state_dir = settings.var_dir / "sqlmesh"
    state_dir.mkdir(parents=True, exist_ok=True)
    if offline:
        gateway = GatewayConfig(
            connection=DuckDBConnectionConfig(catalogs={SPARK_CATALOG: ":memory:"}),
            test_connection=DuckDBConnectionConfig(),
        )
    else:
        # Models whose inputs are built run side by side, each thread on its own cursor of
        # the one Spark session and of the state file (SQLMesh records intervals per thread).
        at_once = settings.units_at_once
        gateway = GatewayConfig(
            connection=DeltaSparkConnectionConfig(concurrent_tasks=at_once),
            state_connection=DuckDBConnectionConfig(
                database=str(state_dir / "state.duckdb"), concurrent_tasks=at_once
            ),
            test_connection=DuckDBConnectionConfig(),
        )
    name = "offline" if offline else "spark"
    return Config(
        project=PROJECT,
        gateways={name: gateway},
        default_gateway=name,
        model_defaults=ModelDefaultsConfig(
            dialect="spark", start=settings.models_start.isoformat(), cron="@daily"
        ),
        virtual_environment_mode="dev_only",
        cache_dir=str(state_dir / "cache"),
        loader=CitylakeLoader,
        loader_kwargs={CONTRACTS_DIR_KEY: str(settings.contracts_dir)},
        disable_anonymized_analytics=True,
    )


def context(settings: Settings, *, offline: bool = False) -> Context:
    sqlmesh_constants.MAX_FORK_WORKERS = 1  # never fork beside a JVM (see __init__)
    # SQLMesh logs every plan step at INFO through the root logger; keep the console for ours.
    logging.getLogger("sqlmesh").setLevel(logging.WARNING)
    return Context(paths=settings.models_dir, config=config(settings, offline=offline))
