"""Writing delivery files the way producers do: CSV (UTF-8, BOM or GBK), XLSX, JSON Lines.

Every writer is deterministic: the same rows give the same bytes (XLSX included, whose zip
members would otherwise carry the time of writing).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
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


def write_jsonl(path: Path, header: list[str], rows: Iterable[Sequence[str]]) -> int:
    """One JSON object per row, UTF-8, `\n` line ends; an empty value is `null`, as an exchange
    API sends it. A row shorter than the header (a truncated line) lacks the missing keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            obj = {k: (v if v != "" else None) for k, v in zip(header, row, strict=False)}
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    return count


# Office files record when they were written; a fixed moment keeps deliveries reproducible.
_FIXED_TIME = datetime(2024, 1, 1)


def write_xlsx(path: Path, header: list[str], rows: Iterable[Sequence[str]]) -> int:
    """The first (only) sheet holds the header and the rows as text cells; empty is blank."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    book.properties.creator = "citylake"
    book.properties.created = book.properties.modified = _FIXED_TIME
    sheet = book.create_sheet("Sheet1")
    sheet.append(header)
    count = 0
    for row in rows:
        sheet.append([v if v != "" else None for v in row])
        count += 1
    buffer = io.BytesIO()
    book.save(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_fixed_zip_times(buffer.getvalue()))
    return count


def _fixed_zip_times(data: bytes) -> bytes:
    # openpyxl stamps every zip member and the document's `modified` property with the current
    # time while saving; rewrite both with a fixed one.
    stamp = _FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + stamp + rb"\g<2>",
                    content,
                )
            dst.writestr(fixed, content)
    return out.getvalue()


def feed_columns(feed: str) -> list[str]:
    """The columns a producer of `feed` delivers, in its ODS contract's order."""
    from citylake.settings import get_settings
    from warehouse_layers.contract import feed_table, load_contracts

    contracts = load_contracts(get_settings().contracts_dir)
    return [c.name for c in feed_table(contracts, feed).feed_columns]
