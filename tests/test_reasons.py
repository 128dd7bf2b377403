# ruff: noqa: E501  (the audit tables in the docstring are as wide as their test ids)
"""Every quarantine reason code the code base can emit has a case that feeds it a named bad input.

The codes are read from the source (every `reject("…")` and `Reject(line, "…")` call in
pipelines/, quality/, warehouse_layers/ and citylake/, plus `PARSE_FAILURE`), so a new code
without a case here or in tests/test_normalize.py fails `test_every_emitted_code_has_a_case`;
every normalization rule must have both normalizing and rejecting cases. The quarantine tables'
contracts must list exactly the codes emitted (their gates check `reason_code` against them).

Audit (issue #3). Test ids are pytest ids: `test_normalize.py::test_rule[<id>]`, here
`test_ods_reason[<id>]` and `test_dwd_row_reason[<id>]`; test_landing.py goes deeper per format.

| rule | normalized (test_rule ids) | rejected |
| --- | --- | --- |
| text | text-stray-spaces-ideographic-inner-kept, text-fullwidth-digits-and-letters, text-tab-and-nbsp-at-the-edges, text-carriage-return-left-by-crlf | missing_value-required-empty, bad_format-required-lowercase-vs-pattern |
| key | key-fullwidth-lowercase-spaces, key-lowercase-in-value-set | bad_format-key-inner-hyphen, bad_value-key-outside-value-set |
| enum | enum-mixed-case-and-spaces, enum-lowercase-y-of-Y-N, enum-lowercase-diesel-0d | bad_value-enum-paypal-outside-set, bad_value-enum-shi-for-Y-is-ambiguous |
| fen | fen-yen-sign-and-thousands-comma, fen-fullwidth-yen-sign, fen-fullwidth-digits | bad_amount-fen-12.00-decimals-ambiguous, bad_amount-fen-12,50-decimal-comma, out_of_range-fen-negative-below-min-1 |
| yuan | yuan-yen-sign-thousands-and-cents, yuan-fullwidth-yen-sign, yuan-thousands-comma-no-sign | bad_amount-yuan-1.234,50-european, bad_amount-yuan-12,50-decimal-comma, out_of_range-yuan-above-max |
| decimal | decimal-fullwidth-digits-and-point, decimal-thousands-comma-to-scale, decimal-double-keeps-every-place | bad_number-decimal-four-places-would-round, bad_number-decimal-yen-sign-on-liters, out_of_range-decimal-negative-liters |
| timestamp | ts-slashes-no-seconds (`2024/1/5 8:05`), ts-chinese-date-no-seconds (`2024年1月5日 8:05`), ts-iso-utc-z-shown-in-0800 | bad_timestamp-dd-mm-or-mm-dd-ambiguous, bad_timestamp-words-yesterday |
| date | date-slashes (`2024/1/5`), date-chinese (`2024年1月5日`), date-compact-yyyymmdd | bad_date-dd-mm-yyyy-ambiguous (`05/01/2024`), bad_date-february-30 |
| uscc | uscc-lowercase-check-character, uscc-fullwidth, uscc-grouped-with-spaces | bad_uscc-wrong-check, bad_uscc-lowercase-wrong-check |
| resident_id | rid-lowercase-x-check, rid-fullwidth-lowercase-x | bad_resident_id-wrong-check, bad_resident_id-birth-date-1949-13-31 |
| division | division-fullwidth-digits, division-qiyang-city-since-2021 | bad_division_code-retired-qiyang-county, bad_division_code-unknown-999999 |
| mcc | mcc-fullwidth-digits, mcc-tab-and-space | bad_mcc-unknown-0000 |
| industry | industry-fullwidth-digits | bad_industry_code-letter, bad_industry_code-division-99-not-in-standard; unknown class `6250` of a real division: strict xfail (no packaged GB/T 4754 list) |
| period | period-dash-zero-padded, period-chinese, period-fullwidth-digits-and-spaces | bad_period-month-13, bad_period-a-date-not-a-month, bad_period-month-first-ambiguous |
| integer | integer-thousands-comma, integer-fullwidth-digits | bad_number-integer-decimals, bad_number-integer-yen-sign, out_of_range-integer-negative-headcount |

USCC and 身份证 check characters: test_check_characters_are_stdnums (every possible check
character of five numbers, both cases, accepted exactly when python-stdnum accepts it).

| reason | layer, emitted by | named bad input (id) | also |
| --- | --- | --- | --- |
| missing_value | DWD, normalize() | test_rule[missing_value-required-empty] | |
| bad_format | DWD, normalize() (`pattern`) | test_rule[bad_format-key-inner-hyphen] | |
| bad_value | DWD, normalize() (enum, `values`) | test_rule[bad_value-enum-paypal-outside-set], [bad_value-key-outside-value-set] | |
| out_of_range | DWD, normalize() (`min`, `max`) | test_rule[out_of_range-fen-negative-below-min-1], [out_of_range-yuan-above-max] | test_payment_path (-5) |
| bad_amount, bad_number, bad_timestamp, bad_date, bad_period, bad_uscc, bad_resident_id, bad_division_code, bad_mcc, bad_industry_code | DWD, PARSE_FAILURE | test_rule[<code>-…] (table above) | test_payment_path (昨天, n/a) |
| unknown_merchant | DWD, dwd/pay_transaction.py | test_dwd_row_reason[unknown_merchant-M404] | test_payment_path |
| unknown_station | DWD, dwd/fuel.py | test_fuel_row_reason[unknown_station-ST404] | test_fuel_path (sale, delivery, reading) |
| unknown_original | DWD, dwd/pay_transaction.py | test_dwd_row_reason[unknown_original-refund-of-T404] | test_payment_path |
| missing_refund_of | DWD, dwd/pay_transaction.py | test_dwd_row_reason[missing_refund_of-refund-with-empty-refund_of] | |
| refund_exceeds_original | DWD, dwd/pay_transaction.py | test_dwd_row_reason[refund_exceeds_original-second-60-of-100] | |
| net_mismatch | DWD, dwd/settlement.py | test_settlement_row_reason[net_mismatch-net-990-of-1000-minus-6] | test_payment_dwd |
| header_mismatch | ODS, landing.py | test_ods_reason[header_mismatch-amount-for-amount_fen] | test_landing: test_csv_wrong_header_rejects_every_line, test_xlsx_wrong_header_rejects_every_row |
| malformed_row | ODS, landing.py | test_ods_reason[malformed_row-csv-truncated-line], [malformed_row-jsonl-unexpected-field] | test_landing: test_csv_truncated_last_line, test_csv_a_row_of_the_wrong_width_is_malformed, … |
| bad_encoding | ODS, landing.py | test_ods_reason[bad_encoding-invalid-utf8-bytes] | test_landing: test_csv_bytes_invalid_in_utf8_and_gbk_reject_that_line_only |
| bad_json | ODS, landing.py | test_ods_reason[bad_json-unclosed-object], [bad_json-array-not-object] | test_landing: test_jsonl_bad_lines_are_rejected_alone |
| unreadable_file | ODS, landing.py | test_ods_reason[unreadable_file-pdf], [unreadable_file-empty-csv], [unreadable_file-corrupt-xlsx] | test_landing: test_csv_empty_file_is_one_unreadable_reject, … |

Producer quirks of source-feeds.md that are not values: CRLF line ends and BOMs are accepted,
not quarantined — test_landing.py: test_csv_encodings_and_line_ends[*-crlf-*] (with
`utf-8-sig`, the BOM), test_csv_header_names_are_folded[inner-bom], test_jsonl_good_objects[crlf],
test_csv_bytes_invalid_in_utf8_and_gbk_reject_that_line_only[bom-*]; a `\\r` left on a value
is trimmed (test_rule[text-carriage-return-left-by-crlf]). Duplicates are not quarantined:
the latest version of a key wins (test_payment_path: the exact duplicate of T1).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import NamedTuple

import pytest
from pyspark.sql import SparkSession

from pipelines.dwd.fuel import build_fuel_sale
from pipelines.dwd.pay_transaction import build_pay_transaction
from pipelines.dwd.settlement import build_settlement
from pipelines.landing import read_delivery
from pipelines.normalize import PARSE_FAILURE, normalize
from quality.suites import GATE_REASONS
from tests.test_normalize import CASES, KNOWN_GAPS, RULE_COLUMNS
from warehouse_layers.contract import Rule, load_contracts

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = load_contracts(ROOT / "warehouse_layers")
SCANNED = ("pipelines", "quality", "warehouse_layers", "citylake")


class Emitted(NamedTuple):
    codes: dict[str, dict[str, list[str]]]  # layer ("ods", "dwd") -> code -> where
    unreadable: list[str]  # calls whose reason code is not a literal the scan can read


def _code_of(arg: ast.expr) -> list[str] | None:
    """The reason code(s) an argument can carry, or None when the scan cannot tell."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    # PARSE_FAILURE.get(rule, "default"): every value of the map, and the default
    if (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr == "get"
        and isinstance(arg.func.value, ast.Name)
        and arg.func.value.id == "PARSE_FAILURE"
        and len(arg.args) == 2
        and isinstance(arg.args[1], ast.Constant)
    ):
        return [*PARSE_FAILURE.values(), arg.args[1].value]
    # check.row.reason: the DWD→DWS gate's code of a row-level check (quality/suites.py)
    if isinstance(arg, ast.Attribute) and arg.attr == "reason":
        return list(GATE_REASONS.values())
    return None


def emitted_codes() -> Emitted:
    """Every reason code passed to `reject(code, …)` (DWD) or `Reject(line, reason, …)` (ODS)."""
    codes: dict[str, dict[str, list[str]]] = {"ods": {}, "dwd": {}}
    unreadable: list[str] = []
    for path in sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py")):
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            keyword = {k.arg: k.value for k in node.keywords}
            if name == "reject":
                layer, arg = "dwd", node.args[0] if node.args else keyword.get("code")
            elif name == "Reject":
                layer, arg = "ods", node.args[1] if len(node.args) > 1 else keyword.get("reason")
            else:
                continue
            found = None if arg is None else _code_of(arg)
            if found is None:
                unreadable.append(f"{where}:{node.lineno}: {ast.unparse(node)[:80]}")
                continue
            for code in found:
                codes[layer].setdefault(code, []).append(f"{where}:{node.lineno}")
    return Emitted(codes, unreadable)


# --- ODS: a delivered line that cannot be read as a row of its feed (pure Python) ----------

ODS = CONTRACTS["ods_pay_transactions"]
COLUMNS = [c.name for c in ODS.feed_columns]
HEADER = ",".join(COLUMNS)
GOOD = "T1,M001,2024-11-05T10:00:00+08:00,100,wechat,success,,431102,零陵终端,2024-11-05T10:00:00+08:00"
GOOD_JSON = json.dumps(dict(zip(COLUMNS, GOOD.split(","), strict=True)), ensure_ascii=False)
BAD_BYTES = GOOD.replace("T1", "T2").encode().replace("零陵".encode(), b"\xff\xfe")


class OdsCase(NamedTuple):
    id: str
    file: str
    content: bytes
    rejects: list[tuple[int, str, str | None]]  # (line, reason, the line as delivered)


ODS_CASES = [
    OdsCase(
        "header_mismatch-amount-for-amount_fen",
        "d.csv",
        f"{HEADER.replace('amount_fen', 'amount')}\n{GOOD}\n".encode(),
        [(2, "header_mismatch", GOOD)],
    ),
    OdsCase(
        "malformed_row-csv-truncated-line",
        "d.csv",
        f"{HEADER}\n{GOOD}\nT2,M001,2024-11-05\n".encode(),
        [(3, "malformed_row", "T2,M001,2024-11-05")],
    ),
    OdsCase(
        "malformed_row-jsonl-unexpected-field",
        "d.jsonl",
        GOOD_JSON[:-1].encode() + b', "remark": "x"}\n',
        [(1, "malformed_row", GOOD_JSON[:-1] + ', "remark": "x"}')],
    ),
    OdsCase(
        "bad_encoding-invalid-utf8-bytes",
        "d.csv",
        f"{HEADER}\n{GOOD}\n".encode() + BAD_BYTES + b"\n",
        [(3, "bad_encoding", BAD_BYTES.decode("utf-8", errors="replace"))],
    ),
    OdsCase(
        "bad_json-unclosed-object",
        "d.jsonl",
        b'{"txn_id": "T1", \n',
        [(1, "bad_json", '{"txn_id": "T1", ')],
    ),
    OdsCase(
        "bad_json-array-not-object",
        "d.jsonl",
        f"{GOOD_JSON}\n[1, 2]\n".encode(),
        [(2, "bad_json", "[1, 2]")],
    ),
    OdsCase("unreadable_file-pdf", "d.pdf", b"%PDF-1.7", [(0, "unreadable_file", None)]),
    OdsCase("unreadable_file-empty-csv", "d.csv", b"", [(0, "unreadable_file", None)]),
    OdsCase(
        "unreadable_file-corrupt-xlsx",
        "d.xlsx",
        b"PK\x03\x04 not a workbook",
        [(0, "unreadable_file", None)],
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ODS_CASES])
def test_ods_reason(tmp_path: Path, case: OdsCase) -> None:
    path = tmp_path / case.file
    path.write_bytes(case.content)
    result = read_delivery(path, COLUMNS, "pay_transactions")
    assert [(r.line, r.reason, r.raw) for r in result.rejects] == case.rejects
    assert all(r.detail for r in result.rejects), "every reject says what is wrong"


# --- DWD: rows that are well-formed but break a rule across rows (Spark) -------------------


def _txn(tid: str, mid: str, time: str, amount: int, status: str = "success", of: str = ""):
    return [tid, mid, f"2024-11-05T{time}+08:00", str(amount), "wechat", status, of, "431102",
            "POS1", f"2024-11-05T{time}+08:00"]  # fmt: skip


class DwdCase(NamedTuple):
    id: str
    line: int
    reason: str
    column: str
    value: str | None  # the offending value as delivered (None: it is missing)


# One delivery: lines 2 and 3 are good (an original and its partial refund).
DELIVERY = [
    _txn("T1", "M001", "10:00:00", 100),
    _txn("R1", "M001", "11:00:00", 60, "refund", "T1"),
    _txn("R2", "M001", "12:00:00", 60, "refund", "T1"),
    _txn("R3", "M001", "12:00:00", 10, "refund", "T404"),
    _txn("R4", "M001", "12:00:00", 10, "refund", ""),
    _txn("T5", "M404", "12:00:00", 100),
]
DWD_CASES = [
    DwdCase("refund_exceeds_original-second-60-of-100", 4, "refund_exceeds_original",
            "amount_fen", "60"),
    DwdCase("unknown_original-refund-of-T404", 5, "unknown_original", "refund_of", "T404"),
    DwdCase("missing_refund_of-refund-with-empty-refund_of", 6, "missing_refund_of",
            "refund_of", None),
    DwdCase("unknown_merchant-M404", 7, "unknown_merchant", "merchant_id", "M404"),
]  # fmt: skip


@pytest.fixture(scope="module")
def dwd_quarantine(spark: SparkSession) -> dict[int, dict]:
    """The quarantine rows of DELIVERY built against a registry that knows M001 only."""
    table = CONTRACTS["dwd_pay_transaction"]
    ods = spark.createDataFrame(
        [(line, *row) for line, row in enumerate(DELIVERY, start=2)],
        "_source_line bigint, " + ", ".join(f"{c} string" for c in COLUMNS),
    ).selectExpr(
        "*",
        "'d' AS _delivery_id",
        "date'2024-11-05' AS _business_date",
        "'d.csv' AS _source_file",
        "now() AS _ingested_at",
    )
    merchants = spark.sql(
        "SELECT 'M001' AS merchant_id, '431102' AS district_code, 'catering' AS sector, "
        "timestamp'1900-01-01 00:00:00' AS valid_from, timestamp'9999-12-31 00:00:00' AS valid_to"
    )
    _, quarantine = build_pay_transaction(normalize(ods, table), merchants, table)
    try:
        return {r.source_line: r.asDict() for r in quarantine.collect()}
    finally:
        spark.catalog.clearCache()  # build_pay_transaction caches its intermediate rows


@pytest.mark.spark
def test_only_the_broken_rows_are_quarantined(dwd_quarantine: dict[int, dict]) -> None:
    assert sorted(dwd_quarantine) == sorted(c.line for c in DWD_CASES)


@pytest.mark.spark
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in DWD_CASES])
def test_dwd_row_reason(dwd_quarantine: dict[int, dict], case: DwdCase) -> None:
    row = dwd_quarantine[case.line]
    assert (row["reason_code"], row["column_name"], row["bad_value"]) == (
        case.reason,
        case.column,
        case.value,
    )
    assert (row["feed"], row["source_file"]) == ("pay_transactions", "d.csv")
    delivered = DELIVERY[case.line - 2]
    assert json.loads(row["raw_record"])["txn_id"] == delivered[0], "the row as delivered"


# One fuel_sales delivery: line 2 is a sale of a known station, line 3 of a station no
# registry delivered.
FUEL_SALE_COLUMNS = [c.name for c in CONTRACTS["ods_fuel_sales"].feed_columns]
FUEL_SALES = [
    ["S1", "ST001", "N1", "92", "40.000", "7.45", "298.00", "2024-11-05T10:00:00+08:00"],
    ["S2", "ST404", "N1", "92", "40.000", "7.45", "298.00", "2024-11-05T10:05:00+08:00"],
]
FUEL_CASES = [DwdCase("unknown_station-ST404", 3, "unknown_station", "station_id", "ST404")]


@pytest.fixture(scope="module")
def fuel_quarantine(spark: SparkSession) -> dict[int, dict]:
    """The quarantine rows of FUEL_SALES built against a station dimension of ST001 only."""
    table = CONTRACTS["dwd_fuel_sale"]
    ods = spark.createDataFrame(
        [(line, *row) for line, row in enumerate(FUEL_SALES, start=2)],
        "_source_line bigint, " + ", ".join(f"{c} string" for c in FUEL_SALE_COLUMNS),
    ).selectExpr(
        "*",
        "'d' AS _delivery_id",
        "date'2024-11-05' AS _business_date",
        "'s.csv' AS _source_file",
        "now() AS _ingested_at",
    )
    stations = spark.sql("SELECT 'ST001' AS station_id")
    _, quarantine = build_fuel_sale(normalize(ods, table), stations, table)
    return {r.source_line: r.asDict() for r in quarantine.collect()}


@pytest.mark.spark
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in FUEL_CASES])
def test_fuel_row_reason(fuel_quarantine: dict[int, dict], case: DwdCase) -> None:
    assert sorted(fuel_quarantine) == [case.line], "only the broken row is quarantined"
    row = fuel_quarantine[case.line]
    assert (row["reason_code"], row["column_name"], row["bad_value"]) == (
        case.reason,
        case.column,
        case.value,
    )
    assert (row["feed"], row["table_name"]) == ("fuel_sales", "dwd_fuel_sale")
    assert json.loads(row["raw_record"])["sale_id"] == FUEL_SALES[case.line - 2][0]


# One pay_settlements page: line 2 reconciles (1,000 − 6 = 994), line 3 does not (990).
SETTLEMENT_COLUMNS = [c.name for c in CONTRACTS["ods_pay_settlements"].feed_columns]
SETTLEMENTS = [
    ["M001", "2024-11-05", "1000", "6", "994", "102", "Y"],
    ["M002", "2024-11-05", "1000", "6", "990", "102", "N"],
]
SETTLEMENT_CASES = [
    DwdCase("net_mismatch-net-990-of-1000-minus-6", 3, "net_mismatch", "net_fen", "990")
]
ROW_CASES = [*DWD_CASES, *FUEL_CASES, *SETTLEMENT_CASES]  # checked by builders, not normalize()


@pytest.fixture(scope="module")
def settlement_quarantine(spark: SparkSession) -> dict[int, dict]:
    """The quarantine rows of SETTLEMENTS."""
    table = CONTRACTS["dwd_pay_settlement"]
    ods = spark.createDataFrame(
        [(line, *row) for line, row in enumerate(SETTLEMENTS, start=2)],
        "_source_line bigint, " + ", ".join(f"{c} string" for c in SETTLEMENT_COLUMNS),
    ).selectExpr(
        "*",
        "'d' AS _delivery_id",
        "date'2024-11-05' AS _business_date",
        "'page.jsonl' AS _source_file",
        "now() AS _ingested_at",
    )
    _, quarantine = build_settlement(normalize(ods, table), table)
    return {r.source_line: r.asDict() for r in quarantine.collect()}


@pytest.mark.spark
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in SETTLEMENT_CASES])
def test_settlement_row_reason(settlement_quarantine: dict[int, dict], case: DwdCase) -> None:
    assert sorted(settlement_quarantine) == [case.line], "only the broken row is quarantined"
    row = settlement_quarantine[case.line]
    assert (row["reason_code"], row["column_name"], row["bad_value"]) == (
        case.reason,
        case.column,
        case.value,
    )
    assert (row["feed"], row["table_name"]) == ("pay_settlements", "dwd_pay_settlement")
    assert json.loads(row["raw_record"])["merchant_id"] == SETTLEMENTS[case.line - 2][0]


# --- completeness ---------------------------------------------------------------------------


def test_every_reason_code_is_a_literal_the_audit_can_read() -> None:
    unreadable = emitted_codes().unreadable
    assert not unreadable, (
        "reason codes must be string literals (or PARSE_FAILURE.get(rule, '…')) so this audit "
        f"sees them: {unreadable}"
    )


def test_every_emitted_code_has_a_case() -> None:
    emitted = emitted_codes().codes
    covered = {
        "dwd": {c.reason for c in CASES if c.reason} | {c.reason for c in ROW_CASES},
        "ods": {r[1] for c in ODS_CASES for r in c.rejects},
    }
    # The gate's codes name the kind of check a DWD row failed, not a bad delivered value:
    # tests/test_gate_policy.py moves rows out through the gate.
    covered["dwd"] |= set(GATE_REASONS.values())
    for layer in ("dwd", "ods"):
        missing = {code: emitted[layer][code] for code in set(emitted[layer]) - covered[layer]}
        assert not missing, f"{layer} reason codes without a named bad input case: {missing}"
        stale = covered[layer] - set(emitted[layer])
        assert not stale, f"cases for {layer} reason codes nothing emits: {stale}"


def test_quarantine_contracts_list_exactly_the_emitted_codes() -> None:
    emitted = emitted_codes().codes
    for layer, table in (("dwd", "dwd_quarantine"), ("ods", "ods_quarantine")):
        listed = set(CONTRACTS[table].column("reason_code").values or ())
        assert listed == set(emitted[layer]), (
            f"{table}.reason_code values differ from the codes emitted: "
            f"not listed {set(emitted[layer]) - listed}, never emitted {listed - set(emitted[layer])}"
        )


@pytest.mark.parametrize("rule", list(Rule), ids=str)
def test_every_rule_has_normalizing_and_rejecting_cases(rule: Rule) -> None:
    columns = {c.name for c in RULE_COLUMNS if c.rule is rule}
    assert columns, f"the case contract has no column with rule {rule}"
    cases = [c for c in CASES if c.column in columns]
    normalizing = [c for c in cases if c.reason is None and c.expected not in (None, c.raw)]
    rejecting = {c.reason for c in cases if c.reason}
    assert normalizing, f"no case shows rule {rule} turning an untidy input into a clean value"
    assert rejecting, f"no case shows rule {rule} quarantining a bad input"
    if rule in PARSE_FAILURE:
        assert PARSE_FAILURE[rule] in rejecting, f"no case gives {rule}'s {PARSE_FAILURE[rule]}"


def test_the_audit_tables_name_real_cases() -> None:
    """Every case id the docstring's audit tables name is a case that runs."""
    ids = {c.id for c in [*CASES, *KNOWN_GAPS, *ODS_CASES, *ROW_CASES]}
    prefixes = {c.reason for c in CASES if c.reason} | {c.id.split("-")[0] for c in CASES}
    prefixes |= {c.id.split("-")[0] for c in [*ODS_CASES, *ROW_CASES]}
    tokens = {
        token.rstrip(",;")
        for token in re.split(r"[\s|()\[\]`]+", __doc__ or "")
        if token.split("-")[0] in prefixes and "-" in token
    }
    assert tokens, "the audit tables name no case"
    assert not tokens - ids, f"the audit names cases that do not exist: {tokens - ids}"
