"""Reading delivered files (pipelines/landing.py): every data line is a record or a reject.

Pure Python: CSV (UTF-8, UTF-8 with BOM, GBK; RFC 4180), XLSX (first sheet), JSON Lines.
The feed is pay_transactions with the columns of its ODS contract.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from pipelines.landing import DeliveryRead, read_delivery
from warehouse_layers.contract import load_contract

CONTRACTS = Path(__file__).resolve().parent.parent / "warehouse_layers"
CONTRACT = load_contract(CONTRACTS / "ods" / "ods_pay_transactions.yaml")
COLUMNS = [c.name for c in CONTRACT.feed_columns]
FEED = "pay_transactions"
TERMINAL = "零陵终端一号"  # Chinese text: the encoding matters


def values(i: int, **overrides: str | None) -> dict[str, str | None]:
    """The i-th transaction of the test deliveries, as text."""
    row: dict[str, str | None] = {
        "txn_id": f"T{i:04d}",
        "merchant_id": "M001",
        "txn_time": "2024-11-05T10:00:00+08:00",
        "amount_fen": str(1000 + i),
        "channel": "wechat",
        "status": "success",
        "refund_of": "",
        "payer_region_code": "431102",
        "terminal_id": TERMINAL,
        "updated_at": "2024-11-05T10:00:00+08:00",
    }
    row.update(overrides)
    return row


def csv_line(row: dict[str, str | None], order: list[str] = COLUMNS) -> str:
    return ",".join(row[c] or "" for c in order)


def read(path: Path) -> DeliveryRead:
    """read_delivery, with the invariants every delivery must satisfy checked on the way."""
    result = read_delivery(path, COLUMNS, FEED)
    careful = read_delivery(path, COLUMNS, FEED, bulk=False)
    result.materialize()
    # The bulk (Arrow) CSV reader, where it applies, must agree exactly with the careful one.
    assert (result.records, result.rejects, result.error) == (
        careful.records,
        careful.rejects,
        careful.error,
    )
    assert result.source_format == careful.source_format
    assert len(result.records) + len(result.rejects) == result.delivered
    lines = [r.line for r in result.records] + [r.line for r in result.rejects]
    assert len(lines) == len(set(lines)), f"line numbers collide: {sorted(lines)}"
    assert all(line >= 0 for line in lines)
    for record in result.records:
        assert sorted(record.values) == sorted(COLUMNS)  # keys in file order, all present
    return result


def write_csv(
    path: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\n", final: bool = True
) -> Path:
    text = newline.join(lines) + (newline if final else "")
    path.write_bytes(text.encode(encoding))
    return path


# --- CSV: encodings, line ends, header folding ----------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize(
    ("encoding", "source_format"),
    [("utf-8", "csv/utf-8"), ("utf-8-sig", "csv/utf-8-sig"), ("gbk", "csv/gbk")],
)
@pytest.mark.parametrize("final_newline", [True, False], ids=["eol", "no-eol"])
def test_csv_encodings_and_line_ends(
    tmp_path: Path, encoding: str, source_format: str, newline: str, final_newline: bool
) -> None:
    rows = [values(i) for i in range(1, 6)]
    path = write_csv(
        tmp_path / "d.csv",
        [",".join(COLUMNS), *(csv_line(r) for r in rows)],
        encoding,
        newline,
        final_newline,
    )
    result = read(path)
    assert result.source_format == source_format
    assert result.error is None
    assert result.rejects == []
    assert result.delivered == 5
    assert [r.line for r in result.records] == [2, 3, 4, 5, 6]
    assert [r.values for r in result.records] == rows
    assert all(r.values["terminal_id"] == TERMINAL for r in result.records)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_header_in_another_order_maps_values_by_name(tmp_path: Path, encoding: str) -> None:
    order = list(reversed(COLUMNS))
    rows = [values(1), values(2, refund_of="T0001", status="refund")]
    path = write_csv(
        tmp_path / "d.csv", [",".join(order), *(csv_line(r, order) for r in rows)], encoding
    )
    result = read(path)
    assert result.error is None
    assert [r.values for r in result.records] == rows


@pytest.mark.parametrize(
    "header",
    [
        [c.upper() for c in COLUMNS],
        [f"  {c}\t" for c in COLUMNS],
        ["ＴＸＮ＿ＩＤ", *COLUMNS[1:]],  # full-width letters and low line
        ["\u3000txn_id\u3000", "Ｍｅｒｃｈａｎｔ_id", *COLUMNS[2:]],  # ideographic spaces
        ["\ufefftxn_id", *COLUMNS[1:]],  # a BOM that survived into the text
    ],
    ids=["upper", "whitespace", "full-width", "ideographic-space", "inner-bom"],
)
def test_csv_header_names_are_folded(tmp_path: Path, header: list[str]) -> None:
    path = write_csv(tmp_path / "d.csv", [",".join(header), csv_line(values(1))])
    result = read(path)
    assert result.error is None
    assert [r.values for r in result.records] == [values(1)]


def test_csv_rfc4180_quoting(tmp_path: Path) -> None:
    tricky = values(2, terminal_id='终端, "甲"\r\n二楼')
    quoted = '"' + tricky["terminal_id"].replace('"', '""') + '"'  # type: ignore[union-attr]
    line = ",".join(quoted if c == "terminal_id" else tricky[c] or "" for c in COLUMNS)
    path = write_csv(
        tmp_path / "d.csv",
        [",".join(COLUMNS), csv_line(values(1)), line, csv_line(values(3))],
        newline="\r\n",
    )
    result = read(path)
    assert result.rejects == []
    assert [r.values for r in result.records] == [values(1), tricky, values(3)]
    # the quoted line break spans physical lines 3-4: the next record is on line 5
    assert [r.line for r in result.records] == [2, 3, 5]


def test_csv_values_are_kept_as_delivered(tmp_path: Path) -> None:
    raw = values(1, amount_fen=" ¥1234 ", channel=" WeChat ", merchant_id="Ｍ001")
    path = write_csv(tmp_path / "d.csv", [",".join(COLUMNS), csv_line(raw)])
    assert read(path).records[0].values == raw  # normalization is DWD's job, not landing's


# --- CSV: header mismatch -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ([c for c in COLUMNS if c != "terminal_id"], ["missing ['terminal_id']"]),
        ([*COLUMNS, "remark"], ["unexpected ['remark']"]),
        ([*COLUMNS, "txn_id"], ["repeated ['txn_id']"]),
        (
            [("amount" if c == "amount_fen" else c) for c in COLUMNS],
            ["missing ['amount_fen']", "unexpected ['amount']"],
        ),
        (["a", "b"], ["missing ['txn_id', 'merchant_id'", "unexpected ['a', 'b']"]),
        ([csv_line(values(0))], ["missing ['txn_id'"]),  # no header row at all
    ],
    ids=["missing", "unexpected", "repeated", "renamed", "foreign", "headerless"],
)
@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_csv_wrong_header_rejects_every_line(
    tmp_path: Path, header: list[str], expected: list[str], encoding: str
) -> None:
    data = [csv_line(values(i)) for i in range(1, 5)]
    path = write_csv(tmp_path / "d.csv", [",".join(header), *data, "", "short,line"], encoding)
    result = read(path)
    assert result.error is not None
    assert "pay_transactions" in result.error
    for part in expected:
        assert part in result.error
    assert result.records == []
    assert result.delivered == 5  # four rows and the short line; the blank line is not data
    assert [r.line for r in result.rejects] == [2, 3, 4, 5, 7]
    assert {r.reason for r in result.rejects} == {"header_mismatch"}
    assert all(r.detail == result.error for r in result.rejects)
    assert result.rejects[0].raw == data[0]


# --- CSV: malformed rows --------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("keep", [1, 5, 9], ids=lambda k: f"{k}-fields")
def test_csv_truncated_last_line(tmp_path: Path, newline: str, keep: int) -> None:
    last = ",".join(csv_line(values(4)).split(",")[:keep])
    lines = [",".join(COLUMNS), *(csv_line(values(i)) for i in range(1, 4)), last]
    result = read(write_csv(tmp_path / "d.csv", lines, newline=newline, final=False))
    assert [r.line for r in result.records] == [2, 3, 4]
    assert len(result.rejects) == 1
    reject = result.rejects[0]
    assert (reject.line, reject.reason, reject.raw) == (5, "malformed_row", last)
    assert f"expected 10 fields, found {keep}" in reject.detail
    assert result.delivered == 4


@pytest.mark.parametrize(
    "bad",
    [
        csv_line(values(2)) + ",extra",
        csv_line(values(2)).replace(",", ";"),
        csv_line(values(2)).replace("wechat,", "we,chat,"),
    ],
    ids=["extra-field", "wrong-separator", "unquoted-comma"],
)
def test_csv_a_row_of_the_wrong_width_is_malformed(tmp_path: Path, bad: str) -> None:
    lines = [",".join(COLUMNS), csv_line(values(1)), bad, csv_line(values(3))]
    result = read(write_csv(tmp_path / "d.csv", lines))
    assert [r.line for r in result.records] == [2, 4]
    assert [(r.line, r.reason, r.raw) for r in result.rejects] == [(3, "malformed_row", bad)]


@pytest.mark.parametrize("column", ["merchant_id", "channel", "terminal_id"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("following", [1, 3, 20])
def test_csv_stray_quote_swallowing_following_lines_keeps_every_line(
    tmp_path: Path, column: str, newline: str, following: int
) -> None:
    stray = csv_line(values(2, **{column: f'"{values(2)[column]}'}))
    rest = [csv_line(values(i)) for i in range(3, 3 + following)]
    lines = [",".join(COLUMNS), csv_line(values(1)), stray, *rest]
    result = read(write_csv(tmp_path / "d.csv", lines, newline=newline))
    data_lines = len(lines) - 1
    assert result.delivered == data_lines
    # Only the line holding the unclosed quote is rejected; reading resumes on the next line.
    assert [r.line for r in result.records] == [2, *range(4, 4 + following)]
    assert [(r.line, r.reason, r.raw) for r in result.rejects] == [(3, "malformed_row", stray)]
    assert "unclosed quote" in result.rejects[0].detail


def test_csv_unclosed_quote_in_the_last_column_keeps_every_line(tmp_path: Path) -> None:
    stray = csv_line(values(2, updated_at='"2024-11-05T10:00:00+08:00'))
    lines = [
        ",".join(COLUMNS),
        csv_line(values(1)),
        stray,
        csv_line(values(3)),
        csv_line(values(4)),
    ]
    result = read(write_csv(tmp_path / "d.csv", lines))
    assert result.delivered == 4
    assert sorted([r.line for r in result.records] + [r.line for r in result.rejects]) == [
        2,
        3,
        4,
        5,
    ]
    assert all("\n" not in (r.values["updated_at"] or "") for r in result.records)


def test_csv_stray_quote_in_a_large_delivery_keeps_every_line(tmp_path: Path) -> None:
    stray = csv_line(values(2, merchant_id='"M001'))
    rest = [csv_line(values(i)) for i in range(3, 3000)]
    lines = [",".join(COLUMNS), csv_line(values(1)), stray, *rest]
    result = read(write_csv(tmp_path / "d.csv", lines))
    assert result.delivered == len(lines) - 1


# --- CSV: encodings that do not decode ------------------------------------------------------


@pytest.mark.parametrize("bad_bytes", [b"\xff\xfe\xfd", b"\x80"], ids=["fffefd", "80"])
@pytest.mark.parametrize("where", [0, 2, 4], ids=["first", "middle", "last"])
@pytest.mark.parametrize(
    ("bom", "source_format"),
    [(b"", "csv/utf-8"), (b"\xef\xbb\xbf", "csv/utf-8-sig")],
    ids=["no-bom", "bom"],
)
def test_csv_bytes_invalid_in_utf8_and_gbk_reject_that_line_only(
    tmp_path: Path, bad_bytes: bytes, where: int, bom: bytes, source_format: str
) -> None:
    assert all(_undecodable(bad_bytes, enc) for enc in ("utf-8", "gbk"))
    lines = [csv_line(values(i)).encode() for i in range(1, 6)]
    lines[where] = csv_line(values(where + 1, terminal_id="X")).encode().replace(b"X", bad_bytes)
    path = tmp_path / "d.csv"
    path.write_bytes(bom + b"\n".join([",".join(COLUMNS).encode(), *lines]) + b"\n")
    result = read(path)
    assert result.source_format == source_format
    assert [(r.line, r.reason) for r in result.rejects] == [(where + 2, "bad_encoding")]
    assert "\ufffd" in (result.rejects[0].raw or "")
    assert len(result.records) == 4
    # the other lines still decode as UTF-8
    assert all(r.values["terminal_id"] == TERMINAL for r in result.records)


def _undecodable(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return True
    return False


def test_csv_a_gbk_line_in_a_utf8_file_does_not_garble_the_others(tmp_path: Path) -> None:
    text = "零陵"  # its UTF-8 bytes also happen to be valid GBK
    assert text.encode("utf-8").decode("gbk") != text
    utf8 = [",".join(COLUMNS), *(csv_line(values(i, terminal_id=text)) for i in (1, 2))]
    path = tmp_path / "d.csv"
    path.write_bytes(
        "\n".join(utf8).encode("utf-8")
        + b"\n"
        + csv_line(values(3, terminal_id=text)).encode("gbk")
        + b"\n"
    )
    result = read(path)
    assert result.delivered == 3
    assert all(r.values["terminal_id"] == text for r in result.records), [
        r.values["terminal_id"] for r in result.records
    ]


# --- CSV: blank, empty and header-only files ------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_csv_blank_lines_are_skipped_and_not_counted(tmp_path: Path, newline: str) -> None:
    lines = [
        "",
        ",".join(COLUMNS),
        "",
        csv_line(values(1)),
        "   ",
        "",
        csv_line(values(2)),
        "\t",
        csv_line(values(3)),
        "",
        "",
    ]
    result = read(write_csv(tmp_path / "d.csv", lines, newline=newline))
    assert result.error is None and result.rejects == []
    assert result.delivered == 3
    assert [r.line for r in result.records] == [4, 7, 9]  # physical line numbers


@pytest.mark.parametrize(
    "content",
    [b"", b"\n", b"\r\n\r\n  \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"],
    ids=["empty", "newline", "blank-lines", "bom-only", "bom-newline"],
)
def test_csv_empty_file_is_one_unreadable_reject(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    result = read(path)
    assert result.records == []
    assert [(r.line, r.reason, r.raw) for r in result.rejects] == [(0, "unreadable_file", None)]
    assert result.delivered == 1
    assert result.error is not None and "empty delivery" in result.error
    assert FEED in result.error


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
@pytest.mark.parametrize("final", [True, False], ids=["eol", "no-eol"])
def test_csv_header_only_delivers_nothing(tmp_path: Path, encoding: str, final: bool) -> None:
    path = write_csv(tmp_path / "d.csv", [",".join(COLUMNS), ""], encoding, final=final)
    result = read(path)
    assert result.error is None
    assert result.records == [] and result.rejects == []
    assert result.delivered == 0


@pytest.mark.parametrize("suffix", [".csv", ".CSV", ".txt", ".Txt"])
def test_csv_suffixes(tmp_path: Path, suffix: str) -> None:
    path = write_csv(tmp_path / f"d{suffix}", [",".join(COLUMNS), csv_line(values(1))])
    result = read(path)
    assert result.source_format == "csv/utf-8"
    assert len(result.records) == 1


# --- XLSX -----------------------------------------------------------------------------------


def write_xlsx(
    path: Path,
    rows: list[list[object]],
    start_row: int = 1,
    extra_sheet: bool = False,
) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "交易"
    for r, row in enumerate(rows, start=start_row):
        for c, value in enumerate(row, start=1):
            sheet.cell(row=r, column=c, value=value)
    if extra_sheet:
        other = book.create_sheet("说明")
        other["A1"] = "这不是数据"
        other["B7"] = 42
        book.active = 1  # the reader takes the FIRST sheet, not the active one
    book.save(path)
    return path


XLSX_WHEN = dt.datetime(2024, 11, 5, 10, 30, 15)


def xlsx_row(i: int) -> list[object]:
    row = values(i)
    return [
        row["txn_id"],
        row["merchant_id"],
        XLSX_WHEN,  # a real datetime cell
        1200.0 if i % 2 else 1200,  # Excel keeps numbers as floats
        row["channel"],
        row["status"],
        None,
        431102,
        row["terminal_id"],
        row["updated_at"],
    ]


def expected_xlsx(i: int) -> dict[str, str | None]:
    return values(
        i,
        txn_time=XLSX_WHEN.isoformat(sep=" "),
        amount_fen="1200",
        refund_of=None,
        payer_region_code="431102",
    )


@pytest.mark.parametrize("extra_sheet", [False, True], ids=["one-sheet", "two-sheets"])
def test_xlsx_first_sheet_header_row(tmp_path: Path, extra_sheet: bool) -> None:
    path = write_xlsx(
        tmp_path / "d.xlsx", [COLUMNS, *(xlsx_row(i) for i in range(1, 4))], 1, extra_sheet
    )
    result = read(path)
    assert result.source_format == "xlsx"
    assert result.error is None and result.rejects == []
    assert [r.line for r in result.records] == [2, 3, 4]
    assert [r.values for r in result.records] == [expected_xlsx(i) for i in range(1, 4)]
    first = result.records[0].values
    assert first["amount_fen"] == "1200"
    assert dt.datetime.fromisoformat(first["txn_time"] or "") == XLSX_WHEN


def test_xlsx_cell_types_become_text(tmp_path: Path) -> None:
    row = xlsx_row(1)
    row[3] = 12.5
    row[5] = True
    row[6] = dt.date(2024, 11, 5)
    row[9] = dt.datetime(2024, 11, 5, 23, 59, 59, 500000)
    path = write_xlsx(tmp_path / "d.xlsx", [COLUMNS, row])
    got = read(path).records[0].values
    assert got["amount_fen"] == "12.5"
    assert got["status"] == "Y"
    assert got["refund_of"] in ("2024-11-05", "2024-11-05 00:00:00")  # openpyxl may widen
    assert dt.datetime.fromisoformat(got["updated_at"] or "") == dt.datetime(
        2024, 11, 5, 23, 59, 59, 500000
    )


def test_xlsx_header_order_folding_and_offset_rows(tmp_path: Path) -> None:
    order = list(reversed(COLUMNS))
    header = [f" {c.upper()} " for c in order]
    header[0] = "ＵＰＤＡＴＥＤ＿ＡＴ"
    rows = [[dict(zip(COLUMNS, xlsx_row(i), strict=True))[c] for c in order] for i in (1, 2)]
    path = write_xlsx(tmp_path / "d.xlsx", [header, *rows, [None] * 10, rows[0]], start_row=3)
    result = read(path)
    assert result.error is None and result.rejects == []
    # line numbers are the sheet's row numbers; the empty row 6 is skipped
    assert [r.line for r in result.records] == [4, 5, 7]
    assert [r.values for r in result.records] == [
        expected_xlsx(1),
        expected_xlsx(2),
        expected_xlsx(1),
    ]


def test_xlsx_value_beyond_the_header_is_malformed(tmp_path: Path) -> None:
    wide = [*xlsx_row(2), None, "多余"]
    short = xlsx_row(3)[:5]
    path = write_xlsx(tmp_path / "d.xlsx", [COLUMNS, xlsx_row(1), wide, short])
    result = read(path)
    assert [(r.line, r.reason) for r in result.rejects] == [(3, "malformed_row")]
    assert "10 header columns" in result.rejects[0].detail
    assert "多余" in (result.rejects[0].raw or "")
    assert [r.line for r in result.records] == [2, 4]
    padded = result.records[1].values
    assert padded["channel"] == "wechat" and padded["status"] is None  # short rows are padded


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (COLUMNS[:-1], "missing ['updated_at']"),
        ([*COLUMNS, "备注"], "unexpected ['备注']"),
        ([*COLUMNS[:5], None, *COLUMNS[5:]], "unexpected ['']"),
    ],
    ids=["missing", "unexpected", "hole"],
)
def test_xlsx_wrong_header_rejects_every_row(
    tmp_path: Path, header: list[object], expected: str
) -> None:
    path = write_xlsx(tmp_path / "d.xlsx", [header, *(xlsx_row(i) for i in range(1, 4))])
    result = read(path)
    assert result.error is not None and expected in result.error
    assert result.records == []
    assert [(r.line, r.reason) for r in result.rejects] == [
        (2, "header_mismatch"),
        (3, "header_mismatch"),
        (4, "header_mismatch"),
    ]


def test_xlsx_header_only_and_empty_sheet(tmp_path: Path) -> None:
    header_only = read(write_xlsx(tmp_path / "h.xlsx", [COLUMNS]))
    assert (header_only.delivered, header_only.error) == (0, None)
    empty = read(write_xlsx(tmp_path / "e.xlsx", []))
    assert [(r.line, r.reason) for r in empty.rejects] == [(0, "unreadable_file")]
    assert empty.error is not None and "empty delivery" in empty.error


def _valid_xlsx_bytes(tmp_path: Path) -> bytes:
    return write_xlsx(tmp_path / "src.xlsx", [COLUMNS, xlsx_row(1), xlsx_row(2)]).read_bytes()


def _rezip(data: bytes, member: str, new: bytes | None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename == member:
                if new is not None:
                    dst.writestr(item, new)
            else:
                dst.writestr(item, src.read(item))
    return out.getvalue()


def _zip_of_text() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "not a workbook")
    return out.getvalue()


CORRUPT_XLSX = {
    "random-bytes": lambda valid: random.Random(7).randbytes(4096),
    "empty": lambda valid: b"",
    "truncated": lambda valid: valid[: len(valid) // 2],
    "csv-renamed": lambda valid: ",".join(COLUMNS).encode(),
    "zip-of-text": lambda valid: _zip_of_text(),
    "no-content-types": lambda valid: _rezip(valid, "[Content_Types].xml", None),
}
CORRUPT_XML = {
    "sheet-xml-truncated": lambda valid: _rezip(
        valid, "xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row"
    ),
    "workbook-xml-garbage": lambda valid: _rezip(valid, "xl/workbook.xml", b"<not xml"),
}


@pytest.mark.parametrize(
    "corrupt",
    [
        *(pytest.param(f, id=k) for k, f in CORRUPT_XLSX.items()),
        *(
            pytest.param(
                f,
                id=k,
            )
            for k, f in CORRUPT_XML.items()
        ),
        pytest.param(
            lambda valid: _rezip(valid, "xl/worksheets/sheet1.xml", None),
            id="sheet-part-missing",
        ),
    ],
)
def test_corrupt_xlsx_is_one_unreadable_reject_never_an_exception(
    tmp_path: Path, corrupt: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "d.xlsx"
    path.write_bytes(corrupt(_valid_xlsx_bytes(tmp_path)))
    result = read(path)
    assert result.source_format == "xlsx"
    assert result.records == []
    assert [(r.line, r.reason, r.raw) for r in result.rejects] == [(0, "unreadable_file", None)]
    assert result.error is not None and "XLSX" in result.error


# --- JSON Lines -----------------------------------------------------------------------------


def write_jsonl(path: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def jl(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".JSONL"])
@pytest.mark.parametrize(
    ("encoding", "source_format"),
    [("utf-8", "jsonl/utf-8"), ("utf-8-sig", "jsonl/utf-8-sig"), ("gbk", "jsonl/gbk")],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_jsonl_good_objects(
    tmp_path: Path, suffix: str, encoding: str, source_format: str, newline: str
) -> None:
    rows = [values(i) for i in range(1, 4)]
    path = write_jsonl(tmp_path / f"d{suffix}", [jl(r) for r in rows], encoding, newline)
    result = read(path)
    assert result.source_format == source_format
    assert result.error is None and result.rejects == []
    assert [r.line for r in result.records] == [1, 2, 3]
    assert [r.values for r in result.records] == rows


def test_jsonl_values_become_text_and_missing_keys_none(tmp_path: Path) -> None:
    numbers = {**values(1), "amount_fen": 1200, "payer_region_code": 431102}
    partial = {"txn_id": "T0002", "merchant_id": "M001", "amount_fen": 15.5}
    nulls = {**values(3), "refund_of": None, "terminal_id": None}
    flags = {**values(4), "status": True}
    shouty = {k.upper(): v for k, v in values(5).items()}
    full_width = {"ｔｘｎ＿ｉｄ": "T0006", " merchant_id ": "M001"}
    lines = [jl(numbers), jl(partial), jl(nulls), jl(flags), jl(shouty), jl(full_width)]
    result = read(write_jsonl(tmp_path / "d.jsonl", lines))
    assert result.rejects == []
    got = [r.values for r in result.records]
    assert got[0]["amount_fen"] == "1200" and got[0]["payer_region_code"] == "431102"
    assert got[1] == {
        c: {"txn_id": "T0002", "merchant_id": "M001", "amount_fen": "15.5"}.get(c) for c in COLUMNS
    }
    assert got[2]["refund_of"] is None and got[2]["terminal_id"] is None
    assert got[3]["status"] == "true"
    assert got[4] == values(5)
    assert (got[5]["txn_id"], got[5]["merchant_id"], got[5]["channel"]) == ("T0006", "M001", None)


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        ("not json at all", "bad_json", "not valid JSON"),
        ('{"txn_id": "T1", ', "bad_json", "not valid JSON"),
        ("{'txn_id': 'T1'}", "bad_json", "not valid JSON"),
        (jl([values(9)]), "bad_json", "must be a JSON object"),
        (jl(list(values(9).values())), "bad_json", "must be a JSON object"),
        ("42", "bad_json", "must be a JSON object"),
        ("null", "bad_json", "must be a JSON object"),
        ('"T0009"', "bad_json", "must be a JSON object"),
        (jl({**values(9), "remark": "x"}), "malformed_row", "unexpected fields ['remark']"),
        (jl({**values(9), "terminal": "x"}), "malformed_row", "unexpected fields ['terminal']"),
        (jl({**values(9), "terminal_id": {"id": 1}}), "malformed_row", "nested values"),
        (jl({**values(9), "amount_fen": [1, 2]}), "malformed_row", "nested values"),
    ],
    ids=[
        "text",
        "truncated",
        "single-quotes",
        "array-of-object",
        "array",
        "number",
        "null",
        "string",
        "unknown-key",
        "misspelled-key",
        "nested-object",
        "nested-array",
    ],
)
def test_jsonl_bad_lines_are_rejected_alone(
    tmp_path: Path, line: str, reason: str, detail: str
) -> None:
    lines = [jl(values(1)), line, "", jl(values(2))]
    result = read(write_jsonl(tmp_path / "d.jsonl", lines))
    assert [r.line for r in result.records] == [1, 4]
    assert [(r.line, r.reason, r.raw) for r in result.rejects] == [(2, reason, line)]
    assert detail in result.rejects[0].detail
    assert result.delivered == 3


def test_jsonl_bad_encoding_rejects_that_line_only(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [jl(values(i)).encode() for i in range(1, 4)]
    lines[1] = jl(values(2, terminal_id="X")).encode().replace(b"X", b"\xff\xfe\xfd")
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = read(path)
    assert [(r.line, r.reason) for r in result.rejects] == [(2, "bad_encoding")]
    assert [r.values for r in result.records] == [values(1), values(3)]


@pytest.mark.parametrize("content", [b"", b"\n\n", b"  \r\n"], ids=["empty", "lf", "blank"])
def test_jsonl_empty_delivers_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    result = read(path)
    assert result.delivered == 0


# --- unsupported files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["d.parquet", "d.xls", "d.json", "d", "d.csv.gz"])
def test_unsupported_suffix_is_one_unreadable_reject(tmp_path: Path, name: str) -> None:
    path = write_csv(tmp_path / name, [",".join(COLUMNS), csv_line(values(1))])
    result = read(path)
    assert result.source_format == "unknown"
    assert result.records == []
    assert [(r.line, r.reason, r.raw) for r in result.rejects] == [(0, "unreadable_file", None)]
    assert result.error is not None and "unsupported file type" in result.error
    assert result.delivered == 1


@pytest.mark.parametrize("seed", range(40))
def test_csv_bulk_and_careful_readers_agree_on_random_dirty_files(
    tmp_path: Path, seed: int
) -> None:
    """Random mixes of every line shape a producer sends: the `read` helper asserts that the
    bulk reader (when it takes the file) and the careful reader give the same rows and rejects."""
    rng = random.Random(seed)
    shapes: list[Callable[[int], str]] = [
        lambda i: csv_line(values(i)),
        lambda i: csv_line(values(i)),
        lambda i: csv_line(values(i, terminal_id='"零陵,一号"')),  # quoted comma
        lambda i: csv_line(values(i)).rsplit(",", rng.randint(1, 5))[0],  # truncated
        lambda i: csv_line(values(i)) + ",extra",  # too many fields
        lambda i: "",  # blank
        lambda i: ",,,,,,,,,",  # separators only
        lambda i: "   ",
        lambda i: csv_line(values(i, terminal_id='"a""b"')),  # escaped quote
    ]
    if seed % 4 == 0:
        shapes.append(lambda i: csv_line(values(i, terminal_id='"two\nlines"')))
    if seed % 5 == 0:
        shapes.append(lambda i: csv_line(values(i, merchant_id='M"01')))  # stray quote
    lines = [",".join(COLUMNS)] + [rng.choice(shapes)(i) for i in range(rng.randint(1, 60))]
    newline = rng.choice(["\n", "\r\n"])
    encoding = rng.choice(["utf-8", "utf-8-sig", "gbk"])
    text = newline.join(lines) + (newline if rng.random() < 0.7 else "")
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode(encoding))
    read(path)
