"""Compaction: a partition's small files rewritten into fewer, without changing a row.

A city-day's fact write commits only the rows that changed (`tables.merge_native`): a late
refund appends a small file to its original's day, and a day a month of late rows touched holds
a file for each. Every reader then opens, lists and plans over all of them. The maintenance DAG
(`citylake_maintenance`, weekly) and `citylake maintain compact` rewrite them.

Compacted are the partitioned tables whose Delta version nothing records: DWD facts, DWS and
ADS. ODS is left alone, because a build pins its ODS versions and writes them on every ADS row;
so are the tables the quality scorecard pins (the roots of its lineage). A compaction there
would move a recorded version without a change of data, and a rebuild of the same inputs would
no longer show the same versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deltalake.exceptions import CommitFailedError

from citylake.settings import Settings, get_settings
from pipelines import tables
from warehouse_layers.contract import TableContract, input_roots

SCORECARD = "ads_quality_scorecard"


@dataclass(frozen=True)
class Compaction:
    """What compacting one table did (`skipped`: why it was not compacted this time)."""

    table: str
    files_removed: int = 0
    files_added: int = 0
    partitions: int = 0
    skipped: str | None = None


def compactable(contracts: dict[str, TableContract]) -> list[TableContract]:
    """The tables compaction may rewrite, by name: partitioned, and no version of theirs recorded
    on a row (not ODS, not an input of the quality scorecard)."""
    pinned = input_roots(SCORECARD, contracts)
    return [
        table
        for name, table in sorted(contracts.items())
        if table.partition_by and table.layer != "ods" and name not in pinned
    ]


def compact(names: Sequence[str] = (), settings: Settings | None = None) -> list[Compaction]:
    """Compact the `names` tables (default: every compactable one that exists); one Delta
    commit per table that had a partition of more than one small file."""
    settings = settings or get_settings()
    contracts = tables.contracts(settings)
    allowed = {t.name: t for t in compactable(contracts)}
    if unknown := [n for n in names if n not in allowed]:
        raise ValueError(
            f"not compactable: {', '.join(unknown)} (compactable: {', '.join(sorted(allowed))})"
        )
    done = []
    for name in names or list(allowed):  # compactable() is in name order
        table = allowed[name]
        if not tables.written(table, settings):
            continue  # nothing to compact
        try:
            metrics = tables.compact_native(table, settings)
        except CommitFailedError as error:  # another writer got there first: next run
            done.append(Compaction(name, skipped=f"a concurrent write: {error}"))
            continue
        done.append(
            Compaction(
                name,
                files_removed=int(metrics.get("numFilesRemoved", 0)),
                files_added=int(metrics.get("numFilesAdded", 0)),
                partitions=int(metrics.get("partitionsOptimized", 0)),
            )
        )
    return done
