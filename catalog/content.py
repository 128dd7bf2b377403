"""What `citylake catalog sync` publishes, computed in the main environment.

The publishing itself (``catalog/sync.py``) runs in ``.venv-catalog`` beside
openmetadata-ingestion, whose pins collide with this environment's; SQLMesh, which knows the
column lineage of the DWS/ADS models, lives only here. So this module gathers everything into
one JSON document — the contracts as they are, every lineage hop with its column pairs, the
cockpit indicators — and the sync reads it on its standard input. Nothing here is
OpenMetadata-specific: the document is the catalog's content in the contracts' own words.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from citylake.settings import Settings
from warehouse_layers.contract import TableContract, load_contracts


def contract_column_edges(
    table: TableContract, contracts: dict[str, TableContract]
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """A DWD table's column edges from its ODS table: the normalization rule's `source`, and
    the line-position columns (``_source_file``…) copied as they are. Keys (from, to) tables,
    values (from column, to column)."""
    edges: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    if table.layer != "dwd" or not any(c.rule for c in table.columns):
        return edges
    ods = contracts[table.upstream[0]]  # load_contracts checked it is the feed's ODS table
    ods_columns = {c.name for c in ods.columns}
    for column in table.columns:
        source = column.source or (column.name if column.name.startswith("_") else None)
        if source and source in ods_columns:
            edges[(ods.name, table.name)].add((source, column.name))
    return edges


def model_column_edges(settings: Settings) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Column edges into the DWS/ADS models, from SQLMesh's parse of their SQL."""
    from pipelines.modeling.lineage import column_lineage

    edges: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for edge in column_lineage(settings):
        _, source_table, source_column = edge.source.split(".")
        _, target_table, target_column = edge.target.split(".")
        edges[(source_table, target_table)].add((source_column, target_column))
    return edges


def lineage(
    contracts: dict[str, TableContract], model_edges: dict[tuple[str, str], set[tuple[str, str]]]
) -> list[dict[str, Any]]:
    """Every hop: a table edge for each contract `upstream` (and each table a model reads
    columns from), with its column edges grouped by target column."""
    columns: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for table in contracts.values():
        for hop in table.upstream:
            columns[(hop, table.name)] |= set()  # the table edge, even without columns
        for hop, pairs in contract_column_edges(table, contracts).items():
            columns[hop] |= pairs
    for hop, pairs in model_edges.items():
        if hop[0] in contracts and hop[1] in contracts:
            columns[hop] |= pairs
    out = []
    for (source, target), pairs in sorted(columns.items()):
        by_target: dict[str, list[str]] = defaultdict(list)
        for source_column, target_column in sorted(pairs):
            by_target[target_column].append(source_column)
        out.append(
            {
                "from": source,
                "to": target,
                "columns": [{"from": froms, "to": to} for to, froms in sorted(by_target.items())],
            }
        )
    return out


def document(settings: Settings, *, with_models: bool = True) -> dict[str, Any]:
    """The catalog's content: tables (their contracts), lineage and indicators.

    Every ADS table is a cockpit indicator (cockpit-indicators.md lists exactly them); each
    becomes a glossary term linked to its table."""
    contracts = load_contracts(settings.contracts_dir)
    model_edges = model_column_edges(settings) if with_models else {}
    return {
        "tables": [contracts[name].model_dump(mode="json") for name in sorted(contracts)],
        "lineage": lineage(contracts, model_edges),
        "indicators": sorted(n for n, t in contracts.items() if t.layer == "ads"),
    }
