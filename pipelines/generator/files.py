"""Writing delivery files the way producers do (CSV per the feed standard)."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable
from pathlib import Path


def write_csv(
    path: Path,
    header: list[str],
    rows: Iterable[list[str]],
    encoding: str = "utf-8",
    bom: bool = False,
) -> int:
    """Write a header and rows as RFC 4180 CSV (`,`, minimal quoting, CRLF); return the row count.

    `bom=True` prefixes a UTF-8 byte-order mark; it is only meaningful for UTF-8. Encoding is
    strict: a character the target code page cannot hold is an error, never a silent `?`.
    """
    if bom and codecs.lookup(encoding).name != "utf-8":
        raise ValueError(f"a BOM only applies to UTF-8, not {encoding}")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rows if isinstance(rows, list) else list(rows)
    with path.open("w", encoding="utf-8-sig" if bom else encoding, newline="") as fh:
        writer = csv.writer(fh)  # excel dialect = RFC 4180 quoting with \r\n line ends
        writer.writerow(header)
        writer.writerows(data)
    return len(data)


def feed_columns(feed: str) -> list[str]:
    """The columns a producer of `feed` delivers, in its ODS contract's order."""
    from citylake.settings import get_settings
    from warehouse_layers.contract import feed_table, load_contracts

    contracts = load_contracts(get_settings().contracts_dir)
    return [c.name for c in feed_table(contracts, feed).feed_columns]
