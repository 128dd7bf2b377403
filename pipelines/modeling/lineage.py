"""Column lineage of the DWS/ADS models, from SQLMesh's parse of their SQL (no JVM needed).

``column_lineage()`` gives, per model column, the upstream columns it is computed from, one
hop each (``ads.ads_trade_daily.net_fen <- dws.dws_trade_merchant_daily.net_fen``); walking the
hops reaches DWD. DWD and ODS columns link by their contracts (``source``). Projections only:
columns that merely filter or group (``booked_date``) are not edges.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmesh import Context
from sqlmesh.core.lineage import column_dependencies

from citylake.settings import Settings
from pipelines.modeling.project import context


@dataclass(frozen=True, order=True)
class Edge:
    source: str  # layer.table.column
    target: str


def _short(fqn: str) -> str:
    return ".".join(part.strip('"`') for part in fqn.split(".")[-2:])


def model_edges(ctx: Context, model_name: str) -> list[Edge]:
    model = ctx.get_model(model_name)
    target = _short(model.fqn)
    edges = set()
    for column in model.columns_to_types or {}:
        for parent, columns in column_dependencies(ctx, model.fqn, column).items():
            for source in columns:
                edges.add(Edge(f"{_short(parent)}.{source}", f"{target}.{column}"))
    return sorted(edges)


def column_lineage(settings: Settings) -> list[Edge]:
    """Every column edge into a DWS or ADS model."""
    ctx = context(settings, offline=True)
    return sorted(
        edge
        for model in ctx.models.values()
        if model.kind.is_materialized
        for edge in model_edges(ctx, model.fqn)
    )
