"""Terminal views shared by the CLI and the demo."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from pipelines.ingest import DeliveryResult


def deliveries_table(results: list[DeliveryResult], title: str | None = None) -> Table:
    """One row per delivery: delivered, loaded into ODS, quarantined, status."""
    table = Table(
        "feed",
        "delivery",
        "file",
        "format",
        "delivered",
        "loaded",
        "quarantined",
        "status",
        title=title,
    )
    for r in results:
        status = r.status + (" (already ingested)" if r.already_ingested else "")
        table.add_row(
            r.feed,
            r.delivery_id[:12],
            Path(r.source).name,
            r.source_format,
            f"{r.delivered:,}",
            f"{r.loaded:,}",
            f"{r.quarantined:,}",
            status,
        )
    return table
