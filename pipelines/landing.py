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
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

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
    """What a delivery holds: good rows as an Arrow table of text (feed columns) with their line
    numbers, and the rejected lines."""

    source_format: str
    records: list[Record] = field(default_factory=list)  # rows read line by line (slow path)
    rejects: list[Reject] = field(default_factory=list)
    error: str | None = None  # a problem with the whole file (its header, its format)
    table: pa.Table | None = None  # rows parsed in bulk (fast path), in feed-column order
    lines: pa.Array | None = None  # the source line of each row of `table`

    @property
    def loaded(self) -> int:
        return len(self.records) if self.table is None else self.table.num_rows

    @property
    def delivered(self) -> int:
        return self.loaded + len(self.rejects)

    def rows(self, columns: Sequence[str]) -> tuple[pa.Table, pa.Array]:
        """The good rows as (Arrow table of `columns` as text, source line of each row)."""
        if self.table is not None and self.lines is not None:
            return self.table.select(list(columns)), self.lines
        table = pa.table(
            {c: pa.array([r.values.get(c) for r in self.records], pa.string()) for c in columns}
        )
        return table, pa.array([r.line for r in self.records], pa.int64())

    def materialize(self) -> None:
        """Turn bulk-parsed rows into `records` (tests and small deliveries only)."""
        if self.table is None or self.lines is None:
            return
        self.records = [
            Record(line, row)
            for line, row in zip(self.lines.to_pylist(), self.table.to_pylist(), strict=True)
        ]
        self.table = self.lines = None


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


def _fast_csv(data: bytes, columns: Sequence[str]) -> DeliveryRead | None:
    """Bulk-parse a well-formed CSV with Arrow's C++ reader, or None to take the careful path.

    Well-formed means: decodes strictly, no blank lines, no quoted field spanning lines and a
    header that matches the contract. Then every record is exactly one physical line, so line
    numbers are known without reading line by line; rows with the wrong number of fields still
    come back (with their line number) as rejects. Anything else goes to `_read_csv`, whose
    line-by-line recovery is exact but ~20x slower.
    """
    encoding = "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        data, encoding = data[3:], "utf-8-sig"
    # Arrow validates UTF-8 as it converts (in C++, without the GIL), so a separate decode pass
    # is only paid when the bulk read fails: then the file may be GBK, or have a broken line.
    bulk = _bulk_csv(data, columns, encoding)
    if bulk is not None or encoding != "utf-8":
        return bulk
    try:
        data.decode("utf-8")
        return None  # valid UTF-8 that Arrow could not take: the careful reader's turn
    except UnicodeDecodeError:
        pass
    text, encoding, lossy = decode(data)
    if lossy or encoding != "gbk":
        return None
    return _bulk_csv(text.encode("utf-8"), columns, "gbk")  # Arrow reads UTF-8 only


def _quiet_undecodable_invalid_rows(unraisable: sys.UnraisableHookArgs) -> None:
    """Arrow hands an invalid row to our handler as text; when its bytes are not UTF-8 that
    conversion fails inside Arrow, which reports it as "ignored" and then aborts the read, and
    we fall back to the careful reader anyway. Only that one report is silenced."""
    if isinstance(unraisable.exc_value, UnicodeDecodeError) and getattr(
        unraisable.object, "_citylake_invalid_row", False
    ):
        return
    _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook
sys.unraisablehook = _quiet_undecodable_invalid_rows


def _bulk_csv(data: bytes, columns: Sequence[str], encoding: str) -> DeliveryRead | None:
    header_end = data.find(b"\n")
    if header_end <= 0 or b"\n\n" in data or b"\n\r\n" in data:
        return None
    if b'"' in data and any(line.count(b'"') % 2 for line in data.split(b"\n")):
        return None  # a quoted field spans lines, or a stray quote: needs the careful reader
    try:
        header_row = next(csv.reader([data[:header_end].decode("utf-8").rstrip("\r")]))
    except UnicodeDecodeError:
        return None
    header = [_header_name(h) for h in header_row]
    if _header_problem(header_row, columns, "") is not None:
        return None
    rejects: list[Reject] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        if row.number is None:  # cannot place it: let the careful reader do the file
            raise _NeedsCarefulRead
        if row.text.strip(" \t\r,"):
            detail = (
                f"expected {row.expected_columns} fields, found {row.actual_columns} "
                "(truncated, misquoted or wrongly separated line)"
            )
            rejects.append(Reject(row.number, "malformed_row", detail, row.text.rstrip("\r")))
        else:
            blanks.append(row.number)
        return "skip"

    invalid._citylake_invalid_row = True  # type: ignore[attr-defined]
    blanks: list[int] = []
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            # One thread: Arrow reports an invalid row's line number only when parsing serially
            # (still ~300 MB/s; delivery-level parallelism uses the other core).
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=header, skip_rows=1, block_size=1 << 24
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (_NeedsCarefulRead, pa.ArrowInvalid):
        return None
    last = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)  # physical lines
    skipped = np.array(sorted([r.line for r in rejects] + blanks), dtype=np.int64)
    lines = np.setdiff1d(np.arange(2, last + 1, dtype=np.int64), skipped, assume_unique=True)
    if len(lines) != table.num_rows:  # the one-line-per-record premise failed: be careful
        return None
    # A line of separators only (",,,") is blank, as in the careful reader: no record.
    blank = pc.equal(pc.utf8_trim_whitespace(table[header[0]]), "")
    if pc.any(blank).as_py():  # only then look at the other columns (usually never)
        for name in header[1:]:
            blank = pc.and_(blank, pc.equal(pc.utf8_trim_whitespace(table[name]), ""))
    if pc.any(blank).as_py():
        keep = pc.invert(blank)
        table, lines = table.filter(keep), lines[np.asarray(keep)]
    return DeliveryRead(
        source_format=f"csv/{encoding}",
        rejects=sorted(rejects, key=lambda r: r.line),
        table=table.select(list(columns)),
        lines=pa.array(lines),
    )


class _NeedsCarefulRead(Exception):
    pass


def _read_csv(data: bytes, columns: Sequence[str], feed: str, bulk: bool = True) -> DeliveryRead:
    fast = _fast_csv(data, columns) if bulk else None
    if fast is not None:
        return fast
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


def read_delivery(
    path: Path,
    columns: Sequence[str],
    feed: str,
    *,
    bulk: bool = True,
    data: bytes | None = None,
) -> DeliveryRead:
    """Read one delivered file of `feed`, whose contract names `columns`.

    `data` is the file's content when the caller has read it already. `bulk=False` forces the
    careful line-by-line CSV reader (tests compare the two).
    """
    fmt = FORMATS.get(path.suffix.lower())
    data = path.read_bytes() if data is None else data
    if fmt is None:
        detail = f"unsupported file type {path.suffix!r}: deliver CSV, XLSX or JSON Lines"
        return DeliveryRead(
            "unknown", rejects=[Reject(0, "unreadable_file", detail, None)], error=detail
        )
    readers = {
        "csv": lambda d, c, f: _read_csv(d, c, f, bulk),
        "xlsx": _read_xlsx,
        "jsonl": _read_jsonl,
    }
    try:
        result = readers[fmt](data, columns, feed)
    except Exception as exc:
        detail = f"not a readable {fmt.upper()} file: {exc}"
        return DeliveryRead(fmt, rejects=[Reject(0, "unreadable_file", detail, None)], error=detail)
    if result.delivered == 0 and result.error:
        # An empty or header-only file delivers nothing; the whole file is the one bad record.
        result.rejects.append(Reject(0, "unreadable_file", result.error, None))
    return result
