"""Every normalization rule (pipelines/normalize.py) with named good and bad inputs.

Each case is one row of one Spark job: a small contract gives every rule (and every kind of
check) its own column, the case fills that column, and the test asserts the typed value, or
the reason code, the column and the bad value as delivered. The test id names the input:
`bad_uscc-lowercase-wrong-check`, `yuan-fullwidth-yen-sign`, ... The audit of every rule and
reason code against its tests, and the test that keeps it complete, are in tests/test_reasons.py.

Valid check characters are computed here with python-stdnum (`stdnum.cn.uscc`,
`stdnum.cn.ric`), the library the code under test calls; `test_check_characters_are_stdnums`
shows the two agree on every possible check character of a few numbers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import SparkSession
from stdnum.cn import ric, uscc

from pipelines.normalize import normalize
from warehouse_layers.contract import Column, Rule, TableContract


def _col(name: str, type_: str, rule: str, **checks: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "source": f"src_{name}",
        "rule": rule,
        "description": {"zh": name, "en": name},
        **checks,
    }


CONTRACT = TableContract.model_validate(
    {
        "name": "dwd_cases",
        "layer": "dwd",
        "domain": "platform",
        "owner_department": "测试",
        "description": {"zh": "规则用例", "en": "rule cases"},
        "retention_days": 1,
        "columns": [
            _col("v_text", "string", "text"),
            # The one required column: every other case fills it with FILLER.
            _col("v_text_req", "string", "text", nullable=False, pattern="^[A-Z]+$"),
            _col("v_key", "string", "key", pattern="^[0-9A-Z]{1,32}$"),
            _col("v_key_set", "string", "key", values=["A1", "B2"]),  # `values` without enum
            _col("v_enum", "string", "enum", values=["wechat", "alipay"]),
            _col("v_enum_yn", "string", "enum", values=["Y", "N"]),
            _col("v_enum_fuel", "string", "enum", values=["92", "95", "98", "0D", "-10D"]),
            _col("v_fen", "bigint", "fen", min=1),
            _col("v_yuan", "decimal(18,2)", "yuan", max=1_000_000),
            _col("v_liters", "decimal(12,3)", "decimal", min=0.001),
            _col("v_degrees", "double", "decimal", max=180),
            _col("v_ts", "timestamp", "timestamp"),
            _col("v_date", "date", "date"),
            _col("v_uscc", "string", "uscc"),
            _col("v_rid", "string", "resident_id"),
            _col("v_division", "string", "division"),
            _col("v_mcc", "string", "mcc"),
            _col("v_industry", "string", "industry"),
            _col("v_period", "string", "period"),
            _col("v_headcount", "bigint", "integer", min=0),
        ],
    }
)
RULE_COLUMNS: tuple[Column, ...] = tuple(c for c in CONTRACT.columns if c.rule)
FILLER = {"v_text_req": "OK"}


def _uscc(base17: str) -> str:
    return base17 + uscc.calc_check_digit(base17)


def _ric(base17: str) -> str:
    return base17 + ric.calc_check_digit(base17 + "0")  # stdnum wants a placeholder check


USCC = _uscc("91431100MA4L0A0X4")  # …4E: a letter check character
USCC_DIGIT = _uscc("92431102MA4QXXXX4")  # …41: a 个体工商户 code with a digit check
RID_X = "11010519491231002X"  # the GB 11643 example number: check character X
RID = _ric("43110220060307123")  # born 2006 in 零陵区 (code valid since 1995)
assert uscc.is_valid(USCC) and USCC[-1].isalpha()
assert uscc.is_valid(USCC_DIGIT) and USCC_DIGIT[-1].isdigit()
assert ric.is_valid(RID_X) and ric.is_valid(RID)


def _other_check(code: str, alphabet: str) -> str:
    """`code` with a check character stdnum rejects."""
    return code[:-1] + next(c for c in alphabet if c != code[-1])


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
RID_ALPHABET = "0123456789X"
USCC_WRONG = _other_check(USCC, USCC_ALPHABET)
USCC_O = USCC[:12] + "O" + USCC[13:]  # O is not in the alphabet (it looks like 0)
RID_WRONG = _other_check(RID, RID_ALPHABET)
RID_MONTH_13 = _ric("11010519491331002")
RID_SPACED = f"{RID[:6]} {RID[6:14]} {RID[14:]}"  # stdnum's ric.compact() keeps inner spaces


class Case(NamedTuple):
    id: str  # reason (or rule) and the input, for the test id
    column: str
    raw: str | None
    expected: str | None  # the typed value as text (None: null); a rejected code keeps its text
    reason: str | None = None  # the reason code, None when the row passes


# fmt: off
CASES: list[Case] = [
    # text: trim (spaces, ideographic spaces, tabs, no-break spaces), full-width -> half-width
    Case("text-stray-spaces-ideographic-inner-kept", "v_text", "  零陵区　店 ", "零陵区 店"),
    Case("text-fullwidth-digits-and-letters", "v_text", "ＡＢＣ１２３", "ABC123"),
    Case("text-fullwidth-punctuation", "v_text", "（零陵）店", "(零陵)店"),
    Case("text-tab-and-nbsp-at-the-edges", "v_text", "\t零陵店\u00a0", "零陵店"),
    Case("text-carriage-return-left-by-crlf", "v_text", "零陵店\r", "零陵店"),
    Case("text-blank-is-absent-when-nullable", "v_text", "   ", None),
    Case("text-required-fullwidth", "v_text_req", "ＯＫ", "OK"),
    Case("missing_value-required-empty", "v_text_req", "", None, "missing_value"),
    Case("missing_value-required-ideographic-space", "v_text_req", "\u3000", None,
         "missing_value"),
    Case("bad_format-required-lowercase-vs-pattern", "v_text_req", "abc", "abc", "bad_format"),
    # key: text, upper-case
    Case("key-fullwidth-lowercase-spaces", "v_key", " ｍ００１ ", "M001"),
    Case("bad_format-key-inner-hyphen", "v_key", "M-001", "M-001", "bad_format"),
    Case("bad_format-key-inner-space", "v_key", "M 001", "M 001", "bad_format"),
    Case("key-lowercase-in-value-set", "v_key_set", "a1", "A1"),
    Case("bad_value-key-outside-value-set", "v_key_set", "C3", "C3", "bad_value"),
    # enum: case folded to the contract's spelling
    Case("enum-mixed-case-and-spaces", "v_enum", " WeChat ", "wechat"),
    Case("enum-fullwidth-upper-case", "v_enum", "ＡＬＩＰＡＹ", "alipay"),
    Case("enum-lowercase-y-of-Y-N", "v_enum_yn", "y", "Y"),
    Case("enum-N-of-Y-N", "v_enum_yn", "N", "N"),
    Case("enum-lowercase-diesel-0d", "v_enum_fuel", "0d", "0D"),
    Case("enum-fullwidth-diesel-minus-10D", "v_enum_fuel", "－１０Ｄ", "-10D"),
    Case("bad_value-enum-paypal-outside-set", "v_enum", "paypal", None, "bad_value"),
    Case("bad_value-enum-wechat-pay-not-a-member", "v_enum", "wechat pay", None, "bad_value"),
    Case("bad_value-enum-shi-for-Y-is-ambiguous", "v_enum_yn", "是", None, "bad_value"),
    Case("bad_value-enum-unknown-fuel-grade-93", "v_enum_fuel", "93", None, "bad_value"),
    # fen: whole numbers; a currency sign and thousands separators go
    Case("fen-yen-sign-and-thousands-comma", "v_fen", "¥1,234", "1234"),
    Case("fen-fullwidth-yen-sign", "v_fen", "￥1,234", "1234"),
    Case("fen-fullwidth-digits", "v_fen", "１２００", "1200"),
    Case("fen-fullwidth-comma", "v_fen", "１，２３４", "1234"),
    Case("fen-space-between-thousands", "v_fen", "1 234 567", "1234567"),
    Case("fen-stray-spaces", "v_fen", " 300\u3000", "300"),
    Case("bad_amount-fen-12.00-decimals-ambiguous", "v_fen", "12.00", None, "bad_amount"),
    Case("bad_amount-fen-12,50-decimal-comma", "v_fen", "12,50", None, "bad_amount"),
    Case("bad_amount-fen-1,2345-not-thousands", "v_fen", "1,2345", None, "bad_amount"),
    Case("bad_amount-fen-12-50-inner-space", "v_fen", "12 50", None, "bad_amount"),
    Case("bad_amount-fen-words", "v_fen", "一百", None, "bad_amount"),
    Case("bad_amount-fen-na", "v_fen", "n/a", None, "bad_amount"),
    Case("bad_amount-fen-overflows-bigint", "v_fen", "99999999999999999999", None,
         "bad_amount"),
    Case("out_of_range-fen-negative-below-min-1", "v_fen", "-5", "-5", "out_of_range"),
    Case("out_of_range-fen-negative-with-yen", "v_fen", "-¥1,200", "-1200", "out_of_range"),
    Case("out_of_range-fen-zero", "v_fen", "0", "0", "out_of_range"),
    # yuan: decimal(18,2)
    Case("yuan-yen-sign-thousands-and-cents", "v_yuan", "¥1,234.50", "1234.50"),
    Case("yuan-fullwidth-yen-sign", "v_yuan", "￥1,234.50", "1234.50"),
    Case("yuan-thousands-comma-no-sign", "v_yuan", "1,234.50", "1234.50"),
    Case("yuan-space-after-yen-sign", "v_yuan", "¥ 1,234.50", "1234.50"),
    Case("yuan-one-decimal", "v_yuan", "1,234.5", "1234.50"),
    Case("yuan-fullwidth-digits-and-point", "v_yuan", "１２３４．５０", "1234.50"),
    Case("yuan-negative-before-yen-sign", "v_yuan", "-¥5", "-5.00"),  # a tax refund
    Case("bad_amount-yuan-1.234,50-european", "v_yuan", "1.234,50", None, "bad_amount"),
    Case("bad_amount-yuan-12,50-decimal-comma", "v_yuan", "12,50", None, "bad_amount"),
    Case("bad_amount-yuan-three-decimals", "v_yuan", "1234.567", None, "bad_amount"),
    Case("bad_amount-yuan-dollar-sign", "v_yuan", "$1,234.50", None, "bad_amount"),
    Case("out_of_range-yuan-above-max", "v_yuan", "1,000,000.01", "1000000.01", "out_of_range"),
    # decimal: a measured quantity (liters, degrees); digits grouped as amounts, no currency
    # sign, never rounded to the column's scale
    Case("decimal-fullwidth-digits-and-point", "v_liters", "１２．３４５", "12.345"),
    Case("decimal-thousands-comma-to-scale", "v_liters", "1,234.5", "1234.500"),
    Case("decimal-stray-spaces-whole-liters", "v_liters", " 40\u3000", "40.000"),
    Case("decimal-double-keeps-every-place", "v_degrees", "26.1234567", "26.1234567"),
    Case("bad_number-decimal-four-places-would-round", "v_liters", "12.3456", None,
         "bad_number"),
    Case("bad_number-decimal-yen-sign-on-liters", "v_liters", "¥12.5", None, "bad_number"),
    Case("bad_number-decimal-12,5-decimal-comma", "v_liters", "12,5", None, "bad_number"),
    Case("bad_number-decimal-overflows-decimal-12-3", "v_liters", "1234567890.5", None,
         "bad_number"),
    Case("bad_number-double-words", "v_degrees", "北纬26度", None, "bad_number"),
    Case("out_of_range-decimal-negative-liters", "v_liters", "-5.5", "-5.500", "out_of_range"),
    Case("out_of_range-decimal-zero-liters-below-min", "v_liters", "0", "0.000", "out_of_range"),
    # timestamp: ISO 8601 with offset, local +08:00 without, 2024/1/5 and 2024年1月5日 forms
    Case("ts-iso-with-offset", "v_ts", "2024-11-05T13:45:12+08:00", "2024-11-05 13:45:12"),
    Case("ts-iso-utc-z-shown-in-0800", "v_ts", "2024-11-05T05:45:12Z", "2024-11-05 13:45:12"),
    Case("ts-no-offset-is-local-0800", "v_ts", "2024-11-05 13:45:12", "2024-11-05 13:45:12"),
    Case("ts-slashes-seconds", "v_ts", "2024/1/5 8:05:00", "2024-01-05 08:05:00"),
    Case("ts-slashes-no-seconds", "v_ts", "2024/1/5 8:05", "2024-01-05 08:05:00"),
    Case("ts-slashes-zero-padded", "v_ts", "2024/01/05 08:05:00", "2024-01-05 08:05:00"),
    Case("ts-chinese-date-seconds", "v_ts", "2024年1月5日 8:05:00", "2024-01-05 08:05:00"),
    Case("ts-chinese-date-no-seconds", "v_ts", "2024年1月5日 8:05", "2024-01-05 08:05:00"),
    Case("ts-fullwidth-digits", "v_ts", "２０２４-１１-０５T１３:４５:１２+08:00",
         "2024-11-05 13:45:12"),
    Case("bad_timestamp-month-13-hour-25", "v_ts", "2024-13-45 25:61", None, "bad_timestamp"),
    Case("bad_timestamp-words-yesterday", "v_ts", "昨天", None, "bad_timestamp"),
    Case("bad_timestamp-dd-mm-or-mm-dd-ambiguous", "v_ts", "05/01/2024 08:05", None,
         "bad_timestamp"),
    Case("bad_timestamp-date-without-time", "v_ts", "2024-11-05", None, "bad_timestamp"),
    Case("bad_timestamp-epoch-seconds-or-millis", "v_ts", "1730785512", None, "bad_timestamp"),
    # date
    Case("date-iso", "v_date", "2024-01-05", "2024-01-05"),
    Case("date-slashes", "v_date", "2024/1/5", "2024-01-05"),
    Case("date-slashes-zero-padded", "v_date", "2024/01/05", "2024-01-05"),
    Case("date-chinese", "v_date", "2024年1月5日", "2024-01-05"),
    Case("date-chinese-fullwidth-digits", "v_date", "２０２４年１月５日", "2024-01-05"),
    Case("date-compact-yyyymmdd", "v_date", "20240105", "2024-01-05"),
    Case("date-stray-spaces", "v_date", " 2024-01-05\u3000", "2024-01-05"),
    Case("bad_date-february-30", "v_date", "2024-02-30", None, "bad_date"),
    Case("bad_date-chinese-month-13", "v_date", "2024年13月1日", None, "bad_date"),
    Case("bad_date-dd-mm-yyyy-ambiguous", "v_date", "05/01/2024", None, "bad_date"),
    Case("bad_date-m-d-yyyy-ambiguous", "v_date", "1/5/2024", None, "bad_date"),
    Case("bad_date-two-digit-year", "v_date", "24/1/5", None, "bad_date"),
    Case("bad_date-zeros", "v_date", "0000-00-00", None, "bad_date"),
    # USCC (GB 32100): stdnum check character; case, width and grouping folded
    Case("uscc-valid", "v_uscc", USCC, USCC),
    Case("uscc-lowercase-check-character", "v_uscc", USCC[:-1] + USCC[-1].lower(), USCC),
    Case("uscc-all-lowercase", "v_uscc", USCC.lower(), USCC),
    Case("uscc-fullwidth", "v_uscc", USCC.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}),
         USCC),
    Case("uscc-grouped-with-spaces", "v_uscc", f"{USCC[:8]} {USCC[8:12]} {USCC[12:]}", USCC),
    Case("uscc-hyphen-before-check", "v_uscc", f"{USCC[:17]}-{USCC[17]}", USCC),
    Case("uscc-digit-check-character", "v_uscc", f" {USCC_DIGIT} ", USCC_DIGIT),
    Case("bad_uscc-wrong-check", "v_uscc", USCC_WRONG, USCC_WRONG, "bad_uscc"),
    Case("bad_uscc-lowercase-wrong-check", "v_uscc", USCC_WRONG.lower(), USCC_WRONG, "bad_uscc"),
    Case("bad_uscc-17-characters", "v_uscc", USCC[:-1], USCC[:-1], "bad_uscc"),
    Case("bad_uscc-letter-O-outside-alphabet", "v_uscc", USCC_O, USCC_O, "bad_uscc"),
    # 身份证 (GB 11643): stdnum check character (and birth date, birth place)
    Case("rid-valid", "v_rid", RID, RID),
    Case("rid-lowercase-x-check", "v_rid", RID_X.lower(), RID_X),
    Case("rid-fullwidth-lowercase-x", "v_rid", RID_X[:-1] + "ｘ", RID_X),
    Case("rid-stray-spaces", "v_rid", f"\u3000{RID} ", RID),
    Case("bad_resident_id-wrong-check", "v_rid", RID_WRONG, RID_WRONG, "bad_resident_id"),
    Case("bad_resident_id-lowercase-x-wrong-check", "v_rid", RID[:-1] + "x", RID[:-1] + "X",
         "bad_resident_id"),
    Case("bad_resident_id-birth-date-1949-13-31", "v_rid", RID_MONTH_13, RID_MONTH_13,
         "bad_resident_id"),
    Case("bad_resident_id-inner-spaces", "v_rid", RID_SPACED, RID_SPACED, "bad_resident_id"),
    Case("bad_resident_id-old-15-digits", "v_rid", "110105491231002", "110105491231002",
         "bad_resident_id"),
    # GB/T 2260 division, ISO 18245 MCC, GB/T 4754 industry class
    Case("division-lingling", "v_division", "431102", "431102"),
    Case("division-fullwidth-digits", "v_division", "４３１１０３", "431103"),
    Case("division-qiyang-city-since-2021", "v_division", " 431181 ", "431181"),
    Case("bad_division_code-retired-qiyang-county", "v_division", "431121", "431121",
         "bad_division_code"),
    Case("bad_division_code-unknown-999999", "v_division", "999999", "999999", "bad_division_code"),
    Case("bad_division_code-4-digits", "v_division", "4311", "4311", "bad_division_code"),
    Case("mcc-restaurants", "v_mcc", "5812", "5812"),
    Case("mcc-fullwidth-digits", "v_mcc", "５４１１", "5411"),
    Case("mcc-tab-and-space", "v_mcc", "\t7011 ", "7011"),
    Case("bad_mcc-unknown-0000", "v_mcc", "0000", "0000", "bad_mcc"),
    Case("bad_mcc-5-digits", "v_mcc", "58120", "58120", "bad_mcc"),
    Case("industry-catering", "v_industry", "6210", "6210"),
    Case("industry-fullwidth-digits", "v_industry", "５２１２", "5212"),
    Case("bad_industry_code-letter", "v_industry", "62A0", "62A0", "bad_industry_code"),
    Case("bad_industry_code-3-digits", "v_industry", "621", "621", "bad_industry_code"),
    Case("bad_industry_code-division-99-not-in-standard", "v_industry", "9999", "9999",
         "bad_industry_code"),
    Case("bad_industry_code-division-00-not-in-standard", "v_industry", "0012", "0012",
         "bad_industry_code"),
    # period: a month as YYYYMM, year first in every accepted form
    Case("period-dash-zero-padded", "v_period", "2024-01", "202401"),
    Case("period-slash-one-digit-month", "v_period", "2024/1", "202401"),
    Case("period-chinese", "v_period", "2024年1月", "202401"),
    Case("period-fullwidth-digits-and-spaces", "v_period", " ２０２４１１\u3000", "202411"),
    Case("bad_period-month-13", "v_period", "202413", None, "bad_period"),
    Case("bad_period-a-date-not-a-month", "v_period", "20240105", None, "bad_period"),
    Case("bad_period-two-digit-year", "v_period", "2401", None, "bad_period"),
    Case("bad_period-month-first-ambiguous", "v_period", "01/2024", None, "bad_period"),
    # integer: a whole number of persons; thousands grouped as amounts, no sign, no decimals
    Case("integer-thousands-comma", "v_headcount", "1,234", "1234"),
    Case("integer-fullwidth-digits", "v_headcount", "１２", "12"),
    Case("bad_number-integer-decimals", "v_headcount", "12.5", None, "bad_number"),
    Case("bad_number-integer-yen-sign", "v_headcount", "¥12", None, "bad_number"),
    Case("bad_number-integer-words", "v_headcount", "十二", None, "bad_number"),
    Case("out_of_range-integer-negative-headcount", "v_headcount", "-3", "-3", "out_of_range"),
]
# fmt: on

# No packaged GB/T 4754-2017 class list is installed, so the industry rule checks the form
# (4 digits) and the division (01-97) only: an unknown class of a real division passes (62
# 餐饮业 has no group 625). Strict: a real list will make it pass.
KNOWN_GAPS = {
    Case(
        "bad_industry_code-unknown-class-6250", "v_industry", "6250", "6250", "bad_industry_code"
    ): "no packaged GB/T 4754-2017 class list: the industry rule checks the division only",
}

# Every possible check character of a few numbers (and its lower case): what the code accepts
# must be exactly what stdnum accepts.
CHECK_PROBES = [
    ("v_uscc", code[:-1] + c)
    for code in (USCC, USCC_DIGIT, _uscc("11431100006098765"))
    for c in USCC_ALPHABET + USCC_ALPHABET.lower()
] + [("v_rid", code[:-1] + c) for code in (RID, RID_X) for c in RID_ALPHABET + "x"]


def _row(column: str, raw: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {c.name: None for c in RULE_COLUMNS} | FILLER
    row[column] = raw
    return row


@pytest.fixture(scope="module")
def results(spark: SparkSession) -> list:
    """Every case and probe normalized in one Spark job, in order."""
    inputs = [(c.column, c.raw) for c in [*CASES, *KNOWN_GAPS]] + CHECK_PROBES
    rows = [
        (i, *_row(column, raw).values())  # dict order is RULE_COLUMNS order
        for i, (column, raw) in enumerate(inputs)
    ]
    df = spark.createDataFrame(
        rows,
        "_source_line bigint, " + ", ".join(f"{c.source} string" for c in RULE_COLUMNS),
    )
    df = df.coalesce(1).selectExpr(  # one task: one Python worker for the stdnum UDFs
        "*",
        "'d' AS _delivery_id",
        "date'2024-11-05' AS _business_date",
        "'f.csv' AS _source_file",
        "now() AS _ingested_at",
    )
    # Sorted here, not by orderBy: a range sort would run the job twice (once to sample).
    return sorted(normalize(df, CONTRACT).collect(), key=lambda row: row["_source_line"])


def _text(value: object) -> str | None:
    if isinstance(value, dt.datetime):  # pyspark hands back naive local time: show it in +08:00
        return value.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    return None if value is None else str(value)


def _check(row: Any, case: Case) -> None:
    column, raw, expected, reason = case.column, case.raw, case.expected, case.reason
    got = _text(row[column])
    if reason is None:
        assert row["_reject"] is None, f"{raw!r} in {column} should pass, got {row['_reject']}"
    else:
        assert row["_reject"] is not None, f"{raw!r} in {column} should be quarantined: {reason}"
        assert (row["_reject"]["code"], row["_reject"]["column"]) == (reason, column), raw
        assert row["_reject"]["value"] == raw, "the quarantine names the value as delivered"
    assert got == expected, f"{raw!r} in {column} normalized to {got!r}, not {expected!r}"


@pytest.mark.spark
@pytest.mark.parametrize(
    ("index", "case"), [pytest.param(i, c, id=c.id) for i, c in enumerate(CASES)]
)
def test_rule(results: list, index: int, case: Case) -> None:
    _check(results[index], case)


@pytest.mark.spark
@pytest.mark.parametrize(
    ("index", "case"),
    [
        pytest.param(len(CASES) + i, c, id=c.id, marks=pytest.mark.xfail(strict=True, reason=why))
        for i, (c, why) in enumerate(KNOWN_GAPS.items())
    ],
)
def test_known_gap(results: list, index: int, case: Case) -> None:
    _check(results[index], case)


@pytest.mark.spark
def test_check_characters_are_stdnums(results: list) -> None:
    """USCC and 身份证 check characters: accepted exactly when python-stdnum accepts them."""
    start = len(CASES) + len(KNOWN_GAPS)
    disagree = []
    for (column, raw), row in zip(CHECK_PROBES, results[start:], strict=True):
        valid = (uscc if column == "v_uscc" else ric).is_valid(raw)
        if valid != (row["_reject"] is None) or (valid and row[column] != raw.upper()):
            disagree.append((raw, valid, row["_reject"], row[column]))
    assert not disagree, f"(raw, stdnum says valid, quarantine, value): {disagree}"


def test_every_case_names_its_rule_and_reason() -> None:
    """Ids are unique and start with the reason code (rejections) or the rule's name."""
    ids = [c.id for c in [*CASES, *KNOWN_GAPS]]
    assert len(ids) == len(set(ids))
    rules = {c.name: c.rule for c in RULE_COLUMNS}
    short = {Rule.TIMESTAMP: "ts", Rule.RESIDENT_ID: "rid"}
    for case in [*CASES, *KNOWN_GAPS]:
        rule = rules[case.column]
        prefix = case.reason or short.get(rule, rule.value)
        assert case.id.startswith(f"{prefix}-"), case
