"""Every normalization rule and every DWD reason code, with the bad input named.

All cases run through one Spark job: each case is a row, normalized by a small contract.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import SparkSession

from pipelines.normalize import normalize
from warehouse_layers.contract import TableContract

pytestmark = pytest.mark.spark

CONTRACT = TableContract.model_validate(
    {
        "name": "dwd_cases",
        "layer": "dwd",
        "domain": "platform",
        "owner_department": "测试",
        "description": {"zh": "规则用例", "en": "rule cases"},
        "retention_days": 1,
        "columns": [
            {
                "name": "v_text",
                "type": "string",
                "source": "raw",
                "rule": "text",
                "description": {"zh": "文本", "en": "text"},
            },
            {
                "name": "v_key",
                "type": "string",
                "source": "raw",
                "rule": "key",
                "description": {"zh": "键", "en": "key"},
            },
            {
                "name": "v_enum",
                "type": "string",
                "source": "raw",
                "rule": "enum",
                "values": ["wechat", "alipay"],
                "description": {"zh": "枚举", "en": "enum"},
            },
            {
                "name": "v_fen",
                "type": "bigint",
                "source": "raw",
                "rule": "fen",
                "min": 1,
                "description": {"zh": "分", "en": "fen"},
            },
            {
                "name": "v_yuan",
                "type": "decimal(18,2)",
                "source": "raw",
                "rule": "yuan",
                "description": {"zh": "元", "en": "yuan"},
            },
            {
                "name": "v_ts",
                "type": "timestamp",
                "source": "raw",
                "rule": "timestamp",
                "description": {"zh": "时间", "en": "time"},
            },
            {
                "name": "v_date",
                "type": "date",
                "source": "raw",
                "rule": "date",
                "description": {"zh": "日期", "en": "date"},
            },
            {
                "name": "v_uscc",
                "type": "string",
                "source": "raw",
                "rule": "uscc",
                "description": {"zh": "信用代码", "en": "uscc"},
            },
            {
                "name": "v_rid",
                "type": "string",
                "source": "raw",
                "rule": "resident_id",
                "description": {"zh": "身份证", "en": "resident id"},
            },
            {
                "name": "v_division",
                "type": "string",
                "source": "raw",
                "rule": "division",
                "description": {"zh": "区划", "en": "division"},
            },
            {
                "name": "v_mcc",
                "type": "string",
                "source": "raw",
                "rule": "mcc",
                "description": {"zh": "MCC", "en": "mcc"},
            },
            {
                "name": "v_industry",
                "type": "string",
                "source": "raw",
                "rule": "industry",
                "description": {"zh": "行业", "en": "industry"},
            },
            {
                "name": "v_required",
                "type": "string",
                "nullable": False,
                "source": "raw",
                "rule": "text",
                "pattern": "^[A-Z]+$",
                "description": {"zh": "必填", "en": "required"},
            },
        ],
    }
)

VALID_USCC = "91431100MA4L0A0X4E"  # check character from stdnum.cn.uscc.calc_check_digit
VALID_RID = "11010519491231002X"  # the GB 11643 example number

# (column, raw value, expected typed value as text or None, expected reason code or None)
CASES = [
    ("v_text", "  零陵区　店 ", "零陵区 店", None),
    ("v_text", "ＡＢＣ１２３", "ABC123", None),  # full-width letters and digits
    ("v_text", "   ", None, None),  # blank is absent, not an error, when nullable
    ("v_key", " ｍ００１ ", "M001", None),
    ("v_enum", " WeChat ", "wechat", None),
    ("v_enum", "paypal", None, "bad_value"),
    ("v_fen", "¥1,234", "1234", None),
    ("v_fen", "１２００", "1200", None),
    ("v_fen", "12.50", None, "bad_amount"),  # a fen amount with decimals is ambiguous
    ("v_fen", "-5", "-5", "out_of_range"),
    ("v_fen", "0", "0", "out_of_range"),
    ("v_fen", "abc", None, "bad_amount"),
    ("v_yuan", "¥1,234.50", "1234.50", None),
    ("v_yuan", "1234.567", None, "bad_amount"),
    ("v_ts", "2024-11-05T13:45:12+08:00", "2024-11-05 13:45:12", None),
    ("v_ts", "2024-11-05T05:45:12Z", "2024-11-05 13:45:12", None),  # shown in +08:00
    ("v_ts", "2024-11-05 13:45:12", "2024-11-05 13:45:12", None),  # local time is +08:00
    ("v_ts", "2024/1/5 8:05:00", "2024-01-05 08:05:00", None),
    ("v_ts", "2024年1月5日 8:05:00", "2024-01-05 08:05:00", None),
    ("v_ts", "２０２４-１１-０５T１３:４５:１２+08:00", "2024-11-05 13:45:12", None),
    ("v_ts", "2024-13-45 25:61", None, "bad_timestamp"),
    ("v_ts", "昨天", None, "bad_timestamp"),
    ("v_date", "2024/1/5", "2024-01-05", None),
    ("v_date", "2024年1月5日", "2024-01-05", None),
    ("v_date", "20240105", "2024-01-05", None),
    ("v_date", "2024-02-30", None, "bad_date"),
    ("v_uscc", VALID_USCC, VALID_USCC, None),
    ("v_uscc", VALID_USCC.lower(), VALID_USCC, None),  # lower-case check character
    ("v_uscc", VALID_USCC[:-1] + "0", None, "bad_uscc"),
    ("v_rid", VALID_RID.lower(), VALID_RID, None),
    ("v_rid", "110105194912310021", None, "bad_resident_id"),
    ("v_division", "431102", "431102", None),
    ("v_division", "431181", "431181", None),  # 祁阳市 (a county-level city since 2021)
    ("v_division", "431121", None, "bad_division_code"),  # the retired 祁阳县 code
    ("v_mcc", "5812", "5812", None),
    ("v_mcc", "0000", None, "bad_mcc"),
    ("v_industry", "6210", "6210", None),
    ("v_industry", "62A0", None, "bad_industry_code"),
    ("v_required", "", None, "missing_value"),
    ("v_required", "abc", "abc", "bad_format"),
]


@pytest.fixture(scope="module")
def results(spark: SparkSession) -> list:
    from stdnum.cn import uscc

    assert uscc.is_valid(VALID_USCC), "fixture USCC must carry a valid check character"
    rows = []
    for i, (column, raw, _, _) in enumerate(CASES):
        # Each case fills its own column; the required column gets a valid value elsewhere.
        row = {c.name: None for c in CONTRACT.columns if c.source}
        row["v_required"] = "OK"
        row[column] = raw
        rows.append((i, *(row[c.name] for c in CONTRACT.columns if c.source)))
    names = ["case"] + [f"src_{c.name}" for c in CONTRACT.columns if c.source]
    df = spark.createDataFrame(rows, names)
    # Point every rule at its own source column, in a copy of the contract.
    columns = [
        c.model_copy(update={"source": f"src_{c.name}"}) if c.rule else c for c in CONTRACT.columns
    ]
    contract = CONTRACT.model_copy(update={"columns": tuple(columns)})
    lineage = {
        "_delivery_id": "'d'",
        "_business_date": "date'2024-11-05'",
        "_source_file": "'f.csv'",
        "_source_line": "case",
        "_ingested_at": "now()",
    }
    for name, expr in lineage.items():
        df = df.selectExpr("*", f"{expr} AS {name}")
    out = normalize(df, contract).orderBy("_source_line").collect()
    return out


@pytest.mark.parametrize(
    ("index", "case"), list(enumerate(CASES)), ids=[f"{c[0]}:{c[1]!r}" for c in CASES]
)
def test_rule(results: list, index: int, case: tuple) -> None:
    column, raw, expected, reason = case
    row = results[index]
    value = row[column]
    if isinstance(value, dt.datetime):  # pyspark hands back naive local time: show it in +08:00
        value = value.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    text = None if value is None else str(value)
    if reason is None:
        assert row["_reject"] is None, f"{raw!r} should pass, got {row['_reject']}"
        assert text == expected, f"{raw!r} normalized to {text!r}"
    else:
        assert row["_reject"] is not None, f"{raw!r} should be quarantined as {reason}"
        assert (row["_reject"]["code"], row["_reject"]["column"]) == (reason, column)
        assert row["_reject"]["value"] == raw, "the quarantine keeps the value as delivered"
