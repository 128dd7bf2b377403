"""Reading a delivered file into records of its feed, without ever losing a line.

Every data line of a delivery ends up either as a record (column -> raw text) or as a rejected
record with a reason code, its line number and its raw text, so `loaded + quarantined =
delivered` holds by construction. Formats of the feed standard: CSV (UTF-8, UTF-8 with BOM or
GBK; RFC 4180), XLSX (first sheet) and JSON Lines.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.widths import FOLD_TABLE as _FOLD

FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Record:
    line: int
    values: dict[str, str | None]


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str  # header_mismatch | malformed_row | bad_encoding | bad_json | unreadable_file
    detail: str
    raw: str | None


@dataclass
class DeliveryRead:
    source_format: str
    records: list[Record] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    error: str | None = None  # a problem with the whole file (its header, its format)

    @property
    def delivered(self) -> int:
        return len(self.records) + len(self.rejects)


def _header_name(name: object) -> str:
    return str(name or "").translate(_FOLD).strip().lstrip("\ufeff").lower()


def _header_problem(header: Sequence[str], columns: Sequence[str], feed: str) -> str | None:
    seen = [_header_name(h) for h in header]
    missing = [c for c in columns if c not in seen]
    unexpected = [h for h in seen if h not in columns]
    repeated = sorted({h for h in seen if seen.count(h) > 1})
    if not (missing or unexpected or repeated):
        return None
    parts = [
        f"missing {missing}" if missing else "",
        f"unexpected {unexpected}" if unexpected else "",
        f"repeated {repeated}" if repeated else "",
    ]
    return f"header does not match the {feed} contract: " + "; ".join(p for p in parts if p)


def decode(data: bytes) -> tuple[str, str, bool]:
    """Text, encoding name, and whether undecodable bytes were replaced (U+FFFD).

    A file is UTF-8 (with or without BOM) or GBK. When strict UTF-8 fails, a file whose other
    non-ASCII lines are valid UTF-8 is UTF-8 with some broken lines (those get U+FFFD and are
    quarantined), not a GBK file: decoding it as GBK would garble every good line.
    """
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig", False
        except UnicodeDecodeError:
            return data[3:].decode("utf-8", errors="replace"), "utf-8-sig", True
    try:
        return data.decode("utf-8"), "utf-8", False
    except UnicodeDecodeError:
        pass
    if any(_valid_utf8_non_ascii(line) for line in data.splitlines()):
        return data.decode("utf-8", errors="replace"), "utf-8", True
    try:
        return data.decode("gbk"), "gbk", False
    except UnicodeDecodeError:
        return data.decode("gbk", errors="replace"), "gbk", True


def _valid_utf8_non_ascii(line: bytes) -> bool:
    if line.isascii():
        return False
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(data: bytes, columns: Sequence[str], feed: str) -> DeliveryRead:
    text, encoding, lossy = decode(data)
    result = DeliveryRead(source_format=f"csv/{encoding}")
    # Physical lines, split exactly as the csv module counts them, so line numbers are exact.
    physical = io.StringIO(text, newline="").readlines()
    header: list[str] | None = None
    header_error: str | None = None
    index = 0  # next physical line to parse
    reader, base = csv.reader(iter(physical), strict=False), 0  # base: line the reader began at

    def restart(at: int) -> None:  # rare: only after a broken line, so the slice is affordable
        nonlocal reader, base
        reader, base = csv.reader(iter(physical[at:]), strict=False), at

    while index < len(physical):
        start = index + 1
        try:
            row = next(reader)
        except csv.Error as exc:  # e.g. a field beyond the size limit: reject the line, go on
            result.rejects.append(
                Reject(
                    start, "malformed_row", f"unparsable CSV: {exc}", physical[index].rstrip("\r\n")
                )
            )
            index += 1
            restart(index)
            continue
        except StopIteration:
            break
        span = base + reader.line_num - index
        lines = physical[index : index + span]
        raw = "".join(lines).rstrip("\r\n")
        if span > 1 and raw.count('"') % 2:
            # An unclosed quote swallowed the following lines: reject only the line holding it
            # and read on from the next line, so no other line is lost or glued to it.
            result.rejects.append(
                Reject(start, "malformed_row", "unclosed quote", lines[0].rstrip("\r\n"))
            )
            index += 1
            restart(index)
            continue
        index += span
        if not any(cell.strip() for cell in row):
            continue  # blank line: no record
        if header is None:
            header = [_header_name(h) for h in row]
            header_error = _header_problem(row, columns, feed)
            result.error = header_error
            continue
        if header_error:
            result.rejects.append(Reject(start, "header_mismatch", header_error, raw))
        elif lossy and "\ufffd" in raw:
            result.rejects.append(
                Reject(start, "bad_encoding", f"bytes not valid in {encoding.upper()}", raw)
            )
        elif len(row) != len(header):
            detail = (
                f"expected {len(header)} fields, found {len(row)} "
                "(truncated, misquoted or wrongly separated line)"
            )
            result.rejects.append(Reject(start, "malformed_row", detail, raw))
        else:
            result.records.append(Record(start, dict(zip(header, row, strict=True))))
    if header is None:
        result.error = f"empty delivery: no header row for {feed}"
    return result


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, tuple[object, ...]]]:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        yield from enumerate(book.worksheets[0].iter_rows(values_only=True), start=1)
    finally:
        book.close()


def _read_xlsx(data: bytes, columns: Sequence[str], feed: str) -> DeliveryRead:
    result = DeliveryRead(source_format="xlsx")
    header: list[str] | None = None
    for number, row in _xlsx_rows(data):
        cells = [_cell_text(v) for v in row]
        if not any(c and c.strip() for c in cells):
            continue
        raw = json.dumps(cells, ensure_ascii=False)
        if header is None:
            width = max(i for i, c in enumerate(cells) if c and c.strip()) + 1
            header = [_header_name(c) for c in cells[:width]]
            result.error = _header_problem(header, columns, feed)
            continue
        if result.error:
            result.rejects.append(Reject(number, "header_mismatch", result.error, raw))
        elif any(c and c.strip() for c in cells[len(header) :]):
            result.rejects.append(
                Reject(
                    number, "malformed_row", f"values beyond the {len(header)} header columns", raw
                )
            )
        else:
            padded = cells[: len(header)] + [None] * (len(header) - len(cells))
            result.records.append(Record(number, dict(zip(header, padded, strict=True))))
    if header is None:
        result.error = f"empty delivery: no header row for {feed}"
    return result


def _read_jsonl(data: bytes, columns: Sequence[str], feed: str) -> DeliveryRead:
    text, encoding, lossy = decode(data)
    result = DeliveryRead(source_format=f"jsonl/{encoding}")
    for number, line in enumerate(io.StringIO(text, newline="").readlines(), start=1):
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        if lossy and "\ufffd" in raw:
            result.rejects.append(Reject(number, "bad_encoding", "bytes not valid in UTF-8", raw))
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            result.rejects.append(Reject(number, "bad_json", f"not valid JSON: {exc.msg}", raw))
            continue
        if not isinstance(obj, dict):
            result.rejects.append(Reject(number, "bad_json", "a line must be a JSON object", raw))
            continue
        keys = {_header_name(k): v for k, v in obj.items()}
        unexpected = sorted(k for k in keys if k not in columns)
        nested = sorted(k for k, v in keys.items() if isinstance(v, dict | list))
        if unexpected or nested:
            what = f"unexpected fields {unexpected}" if unexpected else f"nested values in {nested}"
            result.rejects.append(Reject(number, "malformed_row", what, raw))
            continue
        values = {
            c: (
                None
                if keys.get(c) is None
                else keys[c]
                if isinstance(keys[c], str)
                else json.dumps(keys[c])
            )
            for c in columns
        }
        result.records.append(Record(number, values))
    return result


def read_delivery(path: Path, columns: Sequence[str], feed: str) -> DeliveryRead:
    """Read one delivered file of `feed`, whose contract names `columns`."""
    fmt = FORMATS.get(path.suffix.lower())
    data = path.read_bytes()
    if fmt is None:
        detail = f"unsupported file type {path.suffix!r}: deliver CSV, XLSX or JSON Lines"
        return DeliveryRead(
            "unknown", rejects=[Reject(0, "unreadable_file", detail, None)], error=detail
        )
    readers = {"csv": _read_csv, "xlsx": _read_xlsx, "jsonl": _read_jsonl}
    try:
        result = readers[fmt](data, columns, feed)
    except Exception as exc:
        detail = f"not a readable {fmt.upper()} file: {exc}"
        return DeliveryRead(fmt, rejects=[Reject(0, "unreadable_file", detail, None)], error=detail)
    if result.delivered == 0 and result.error:
        # An empty or header-only file delivers nothing; the whole file is the one bad record.
        result.rejects.append(Reject(0, "unreadable_file", result.error, None))
    return result
