"""The government domain's DWD: enterprise SCD2 with protected PII, tax and social insurance
facts (a later delivery supersedes), and the reference dimensions from their packages.

Hand-made deliveries, normalized by their contracts; each table is collected once (module
fixtures), so the whole file costs a handful of Spark actions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyspark.sql.functions as F
import pytest
from pyspark.sql import DataFrame, SparkSession
from stdnum.cn import ric, uscc

from citylake.settings import Settings
from pipelines import gbt4754, tables
from pipelines.dwd.affected import affected_rows
from pipelines.dwd.dimensions import build_district, build_industry, build_mcc
from pipelines.dwd.enterprise import build_enterprise
from pipelines.dwd.tax import build_social_insurance, build_tax_monthly
from pipelines.ingest import ingest_file
from pipelines.normalize import normalize
from tests.payment_files import write
from warehouse_layers.contract import ContractError, load_contracts

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = load_contracts(ROOT / "warehouse_layers")
PII_KEY = "test-pii-key"


def _uscc(base17: str) -> str:
    return base17 + uscc.calc_check_digit(base17)


def _ric(base17: str) -> str:
    return base17 + ric.calc_check_digit(base17 + "0")


ACME = _uscc("91431102MA4L0B0X1")  # moves from 零陵区 to 冷水滩区, then 注销
INN = _uscc("91431181MA4L0C0X2")  # 祁阳市
REP_ID = _ric("43110220000307123")  # ACME's legal representative (零陵区 code since 1995)
REP_ID_X = "11010519491231002X"  # INN's: check character X, delivered in lower case
BAD_REP_ID = REP_ID[:-1] + ("0" if REP_ID[-1] != "0" else "1")
BAD_USCC = ACME[:-1] + ("0" if ACME[-1] != "0" else "1")
assert uscc.is_valid(ACME) and uscc.is_valid(INN) and ric.is_valid(REP_ID)
assert not ric.is_valid(BAD_REP_ID) and not uscc.is_valid(BAD_USCC)

T1, T2, T2_AGAIN, T3 = (
    "2023-01-10T09:00:00+08:00",
    "2024-03-01T10:00:00+08:00",
    "2024-04-01T11:00:00+08:00",  # the same record re-published: no new version
    "2024-06-15T16:30:00+08:00",
)


def _registry_row(
    code: str,
    updated: str,
    *,
    status: str = "存续",
    district: str = "431102",
    rep_id: str = REP_ID,
    rep_name: str = "张三",
    industry: str = "6210",
    capital: str = "100.00",
) -> list[str]:
    return [
        code, "永州市阳光餐饮管理有限公司", rep_id, rep_name, capital, "2015-03-02", status,
        industry, district, "永州市中山路1号", "小", "N", updated,
    ]  # fmt: skip


def _ods(spark: SparkSession, table: str, deliveries: list[tuple[str, str, list[list[str]]]]):
    """ODS rows of `table`: (delivery id, business date, rows) per delivery, lines from 2."""
    columns = [c.name for c in CONTRACTS[table].feed_columns]
    rows = [
        (delivery, dt.date.fromisoformat(day), line, *row)
        for delivery, day, delivered in deliveries
        for line, row in enumerate(delivered, start=2)
    ]
    schema = "_delivery_id string, _business_date date, _source_line bigint, " + ", ".join(
        f"{c} string" for c in columns
    )
    return spark.createDataFrame(rows, schema).selectExpr(
        "*",
        "concat(_delivery_id, '.jsonl') AS _source_file",
        "timestamp(_business_date) AS _ingested_at",
    )


def _shown(df: DataFrame, *timestamps: str) -> DataFrame:
    """`df` with its timestamps also as +08:00 text (`<name>_text`), for plain comparisons."""
    return df.select(
        "*", *[F.date_format(t, "yyyy-MM-dd HH:mm:ss").alias(f"{t}_text") for t in timestamps]
    )


@pytest.fixture(scope="module")
def enterprise(spark: SparkSession) -> dict[str, Any]:
    table = CONTRACTS["dwd_enterprise"]
    day1 = [
        _registry_row(ACME, T1),
        _registry_row(
            INN, T1, rep_id=REP_ID_X.lower(), rep_name="欧阳娜娜", industry="6110",
            district="431181",
        ),
        _registry_row(BAD_USCC, T1),  # line 4: bad_uscc
        _registry_row(_uscc("91431102MA4L0D0X3"), T1, rep_id=BAD_REP_ID),  # line 5
        _registry_row(_uscc("91431102MA4L0E0X4"), T1, industry="9912"),  # line 6
        _registry_row(_uscc("91431102MA4L0F0X5"), T1, capital="-100.00"),  # line 7
    ]  # fmt: skip
    later = [
        _registry_row(ACME, T1),  # the first version delivered again
        _registry_row(ACME, T2, status="在业", district="431103"),
        _registry_row(ACME, T2_AGAIN, status="在业", district="431103"),
        _registry_row(ACME, T3, status="注销", district="431103"),
    ]
    ods = _ods(
        spark,
        "ods_gov_enterprise_registry",
        [("r1", "2023-01-10", day1), ("r2", "2024-06-16", later)],
    )
    dim, quarantine = build_enterprise(normalize(ods, table, pii_key=PII_KEY), table)
    rows = _shown(dim, "valid_from", "valid_to").collect()
    return {
        "columns": dim.columns,
        "types": dict(dim.dtypes),
        "rows": rows,
        "quarantine": {r.source_line: r.asDict() for r in quarantine.collect()},
    }


def _versions(enterprise: dict[str, Any], code: str) -> list[Any]:
    return sorted((r for r in enterprise["rows"] if r.uscc == code), key=lambda r: r.valid_from)


@pytest.mark.spark
def test_enterprise_history_moves_district_then_closes(enterprise: dict[str, Any]) -> None:
    history = [
        (
            r.valid_from_text, r.valid_to_text, r.district_code, r.status, r.is_active,
            r.closed_date, r.is_current,
        )
        for r in _versions(enterprise, ACME)
    ]  # fmt: skip
    assert history == [
        ("1900-01-01 00:00:00", "2024-03-01 10:00:00", "431102", "存续", True, None, False),
        ("2024-03-01 10:00:00", "2024-06-15 16:30:00", "431103", "在业", True, None, False),
        ("2024-06-15 16:30:00", "9999-12-31 00:00:00", "431103", "注销", False,
         dt.date(2024, 6, 15), True),
    ]  # fmt: skip
    (inn,) = _versions(enterprise, INN)
    assert (inn.industry_code, inn.industry_section, inn.district_code) == ("6110", "H", "431181")
    assert (inn.is_current, inn.is_active, inn.reg_capital_wan) == (True, True, Decimal("100"))


@pytest.mark.spark
def test_legal_representative_is_only_hashed_and_masked(enterprise: dict[str, Any]) -> None:
    acme, inn = _versions(enterprise, ACME)[0], _versions(enterprise, INN)[0]

    def keyed(value: str) -> str:
        return hmac.new(PII_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()

    assert acme.legal_rep_id_hash == keyed(REP_ID)
    assert inn.legal_rep_id_hash == keyed(REP_ID_X), "hashed as normalized: upper-case X"
    assert (acme.legal_rep_name_hash, inn.legal_rep_name_hash) == (keyed("张三"), keyed("欧阳娜娜"))
    assert acme.legal_rep_id_masked == REP_ID[:4] + "*" * 10 + REP_ID[-4:]
    assert inn.legal_rep_id_masked == "1101**********002X"
    assert (acme.legal_rep_name_masked, inn.legal_rep_name_masked) == ("张*", "欧阳**")

    clear = {REP_ID, REP_ID_X, REP_ID_X.lower(), BAD_REP_ID, "张三", "欧阳娜娜"}
    strings = [c for c, t in enterprise["types"].items() if t == "string"]
    assert {"legal_rep_id", "legal_rep_name"}.isdisjoint(enterprise["columns"])
    leaks = [
        (c, r[c])
        for r in enterprise["rows"]
        for c in strings
        if any(v in (r[c] or "") for v in clear)
    ]
    assert not leaks, f"clear PII in dwd_enterprise: {leaks}"
    # Nor in the quarantine, which shows the masked forms (ODS keeps the delivered value).
    quarantined = [str(v) for row in enterprise["quarantine"].values() for v in row.values()]
    assert not [v for v in quarantined if any(p in v for p in clear)]
    assert enterprise["quarantine"][5]["bad_value"] == BAD_REP_ID[:4] + "*" * 10 + BAD_REP_ID[-4:]


def _months_rebuilt(
    deliveries: list[tuple[str, str, list[list[str]]]], spans: dict[str, tuple[dt.date, dt.date]]
) -> dict[str, list[str]]:
    """The months a build of each span writes (those of the rows its deliveries affect), with
    the deliveries ingested for real: the keys are followed through the feed's line index."""
    table = CONTRACTS["dwd_tax_monthly"]
    with tempfile.TemporaryDirectory() as tmp:
        lake = Settings(var_dir=Path(tmp), warehouse=f"{tmp}/lakehouse", landing=f"{tmp}/in")
        header = [c.name for c in CONTRACTS["ods_gov_tax_monthly"].feed_columns]
        for name, day, rows in deliveries:
            path = write(Path(lake.landing), "gov_tax_monthly", day, f"{name}.csv", header, rows)
            ingest_file(path, "gov_tax_monthly", settings=lake)
        spark = SparkSession.getActiveSession()
        assert spark is not None
        ods = tables.read(spark, CONTRACTS["ods_gov_tax_monthly"], settings=lake)
        keys = {("uscc", "period"): "tax"}
        months = {}
        for span, days in spans.items():
            rows = affected_rows(
                ods, "gov_tax_monthly", table, keys, days=days, follow=frozenset({"tax"}),
                settings=lake,
            )  # fmt: skip
            facts, _ = build_tax_monthly(normalize(rows, table), table)
            months[span] = sorted({r.period for r in facts.collect()})
        return months


@pytest.fixture(scope="module")
def tax(spark: SparkSession) -> dict[str, Any]:
    table = CONTRACTS["dwd_tax_monthly"]

    def filing(code: str, period: str, revenue: str, updated: str) -> list[str]:
        return [code, period, revenue, "1,300.00", "250.00", "¥1,706.00", updated]

    june = [
        filing(ACME, "202405", "100,000.00", "2024-06-10T10:00:00+08:00"),
        filing(INN, "2024-05", "80,000.00", "2024-06-10T10:05:00+08:00"),
        filing(INN, "202413", "1.00", "2024-06-10T10:06:00+08:00"),  # line 4: bad_period
        filing(INN, "202404", "-5.00", "2024-06-10T10:07:00+08:00"),  # line 5: negative
        filing(BAD_USCC, "202405", "1.00", "2024-06-10T10:08:00+08:00"),  # line 6: bad_uscc
    ]
    july = [  # 更正申报: ACME's May again, with the true revenue; and its June filing
        filing(ACME, "202405", "150,000.00", "2024-07-03T09:00:00+08:00"),
        filing(ACME, "202406", "120,000.00", "2024-07-03T09:01:00+08:00"),
    ]
    stale = [filing(ACME, "202405", "100,000.00", "2024-06-10T10:00:00+08:00")]  # re-sent
    deliveries = [
        ("t1", "2024-06-10", june),
        ("t2", "2024-07-03", july),
        ("t3", "2024-07-05", stale),
    ]
    ods = _ods(spark, "ods_gov_tax_monthly", deliveries)
    normalized = normalize(ods, table)
    facts, quarantine = build_tax_monthly(normalized, table)
    return {
        "facts": {(r.uscc, r.period): r for r in facts.collect()},
        "quarantine": {(r.delivery_id, r.source_line): r.asDict() for r in quarantine.collect()},
        "periods": _months_rebuilt(
            deliveries,
            {
                "july-3": (dt.date(2024, 7, 3), dt.date(2024, 7, 3)),
                "june": (dt.date(2024, 6, 1), dt.date(2024, 6, 30)),
            },
        ),
    }


@pytest.mark.spark
def test_a_later_tax_delivery_supersedes_the_month(tax: dict[str, Any]) -> None:
    facts = tax["facts"]
    assert sorted(facts) == [(ACME, "202405"), (ACME, "202406"), (INN, "202405")]
    may = facts[(ACME, "202405")]
    # The later updated_at wins, also over an older version re-sent after it.
    assert may.sales_revenue_yuan == Decimal("150000.00")
    assert may._delivery_id == "t2"
    assert (may.vat_yuan, may.cit_yuan, may.total_tax_yuan) == (
        Decimal("1300.00"),
        Decimal("250.00"),
        Decimal("1706.00"),
    )
    assert facts[(INN, "202405")].sales_revenue_yuan == Decimal("80000.00")
    # A build of July 3 rewrites exactly the months that day's delivery carries; June's
    # 202404 row is quarantined (out of range), so no month of April changes.
    assert tax["periods"] == {"july-3": ["202405", "202406"], "june": ["202405"]}


@pytest.mark.spark
def test_bad_tax_rows_are_quarantined_with_their_reason(tax: dict[str, Any]) -> None:
    reasons = {k: (r["reason_code"], r["column_name"]) for k, r in tax["quarantine"].items()}
    assert reasons == {
        ("t1", 4): ("bad_period", "period"),
        ("t1", 5): ("out_of_range", "sales_revenue_yuan"),
        ("t1", 6): ("bad_uscc", "uscc"),
    }
    assert {r["feed"] for r in tax["quarantine"].values()} == {"gov_tax_monthly"}


@pytest.mark.spark
def test_bad_registry_rows_are_quarantined_with_their_reason(enterprise: dict[str, Any]) -> None:
    quarantine = enterprise["quarantine"]
    reasons = {line: (r["reason_code"], r["column_name"]) for line, r in quarantine.items()}
    assert reasons == {
        4: ("bad_uscc", "uscc"),
        5: ("bad_resident_id", "legal_rep_id_hash"),
        6: ("bad_industry_code", "industry_code"),
        7: ("out_of_range", "reg_capital_wan"),
    }


@pytest.mark.spark
def test_social_insurance_latest_headcount_wins(spark: SparkSession) -> None:
    table = CONTRACTS["dwd_social_insurance"]
    first = [
        [ACME, "202405", "12", "2024-06-08T09:00:00+08:00"],
        [ACME, "202406", "-1", "2024-07-08T09:00:00+08:00"],  # line 3: negative
        [INN, "202405", "12.5", "2024-06-08T09:00:00+08:00"],  # line 4: not a headcount
    ]
    correction = [[ACME, "202405", "1,013", "2024-06-20T09:00:00+08:00"]]
    ods = _ods(
        spark,
        "ods_gov_social_insurance",
        [("s1", "2024-06-08", first), ("s2", "2024-06-20", correction)],
    )
    facts, quarantine = build_social_insurance(normalize(ods, table), table)
    assert [(r.uscc, r.period, r.insured_headcount) for r in facts.collect()] == [
        (ACME, "202405", 1013)
    ]
    reasons = {r.source_line: r.reason_code for r in quarantine.collect()}
    assert reasons == {3: "out_of_range", 4: "bad_number"}


@pytest.mark.spark
def test_district_dimension_covers_china_and_yongzhou(spark: SparkSession) -> None:
    dim = build_district(spark, CONTRACTS["dwd_dim_district"])
    rows = {r.district_code: r for r in dim.collect()}
    assert len(rows) > 3000
    qiyang = rows["431181"]
    assert (qiyang.name, qiyang.level, qiyang.parent_code) == ("祁阳市", "county", "431100")
    assert (qiyang.city_name, qiyang.province_name, qiyang.full_name) == (
        "永州市",
        "湖南省",
        "湖南省永州市祁阳市",
    )
    yongzhou = {c for c, r in rows.items() if r.city_code == "431100"}
    assert yongzhou == {
        "431100", "431102", "431103", "431122", "431123", "431124", "431125", "431126",
        "431127", "431128", "431129", "431181",
    }  # fmt: skip
    assert (rows["430000"].level, rows["430000"].parent_code) == ("province", None)
    dongcheng = rows["110101"]  # a municipality's district: no prefecture-level city
    assert (dongcheng.parent_code, dongcheng.city_code, dongcheng.full_name) == (
        "110000",
        None,
        "北京市东城区",
    )


@pytest.mark.spark
def test_mcc_dimension_from_iso18245(spark: SparkSession) -> None:
    rows = {r.mcc: r for r in build_mcc(spark, CONTRACTS["dwd_dim_mcc"]).collect()}
    assert {"5812", "5411", "7011", "5541", "7991"} <= set(rows)
    assert rows["5812"].description == "Eating places and restaurants"
    assert rows["5812"].group_range == "5700-5999"


@pytest.mark.spark
def test_industry_dimension_sections_and_thresholds(spark: SparkSession) -> None:
    codes = spark.createDataFrame(
        [(c,) for c in ("6210", "5212", "5265", "2710", "5110", "7020", "7010", "6210", "9912")],
        "industry_code string",
    )
    dim = build_industry(codes, CONTRACTS["dwd_dim_industry"])
    rows = {r.industry_code: r for r in dim.collect()}
    assert "9912" not in rows, "division 99 is not in GB/T 4754-2017"
    sections = {c: (r.division_code, r.section_code) for c, r in rows.items()}
    assert sections == {
        "6210": ("62", "H"), "5212": ("52", "F"), "5265": ("52", "F"), "2710": ("27", "C"),
        "5110": ("51", "F"), "7020": ("70", "K"), "7010": ("70", "K"),
    }  # fmt: skip
    assert rows["6210"].section_name == "住宿和餐饮业"
    wan = Decimal(10_000)
    thresholds = {c: (r.inclusion_category, r.inclusion_threshold_yuan) for c, r in rows.items()}
    assert thresholds == {
        "6210": ("限上餐饮", 200 * wan),
        "5212": ("限上零售", 500 * wan),
        "5265": ("限上零售", 500 * wan),
        "2710": ("规上工业", 2000 * wan),
        "5110": ("限上批发", 2000 * wan),
        "7020": ("规上服务业", 1000 * wan),
        "7010": (None, None),  # 房地产开发经营: no revenue threshold
    }


# --- pure Python: the hand-written GB/T 4754 table and the contract's PII guard -------------


def test_gbt4754_sections_cover_every_division_once() -> None:
    divisions = [d for s in gbt4754.SECTIONS for d in range(s.first, s.last + 1)]
    assert divisions == list(range(1, 98)), "sections are contiguous ranges of 01-97"
    assert [s.code for s in gbt4754.SECTIONS] == [chr(c) for c in range(ord("A"), ord("T") + 1)]
    assert gbt4754.section_of("9912") is None


@pytest.mark.parametrize(
    ("code", "category", "wan"),
    [
        ("6210", "限上餐饮", 200), ("6110", "限上住宿", 200), ("5212", "限上零售", 500),
        ("5111", "限上批发", 2000), ("1311", "规上工业", 2000), ("4411", "规上工业", 2000),
        ("0610", "规上工业", 2000), ("5413", "规上服务业", 2000), ("6513", "规上服务业", 2000),
        ("8310", "规上服务业", 2000), ("7020", "规上服务业", 1000), ("7030", "规上服务业", 1000),
        ("7040", "规上服务业", 1000), ("7090", "规上服务业", 1000), ("8010", "规上服务业", 500),
        ("8411", "规上服务业", 500), ("8610", "规上服务业", 500),
    ],
)  # fmt: skip
def test_inclusion_thresholds_of_source_feeds(code: str, category: str, wan: int) -> None:
    inclusion = gbt4754.inclusion_of(code)
    assert inclusion is not None
    assert (inclusion.category, inclusion.threshold_yuan) == (category, Decimal(wan * 10_000))


@pytest.mark.parametrize("code", ["0111", "4710", "6620", "7010", "9100", "9700"])
def test_no_revenue_threshold_outside_the_surveys(code: str) -> None:
    assert gbt4754.inclusion_of(code) is None


def test_generator_thresholds_agree_with_the_dimension() -> None:
    """The demo city plants revenues against the same thresholds (pipelines/generator)."""
    from pipelines.generator.city import ACTIVITIES

    for code, activity in ACTIVITIES.items():
        inclusion = gbt4754.inclusion_of(code)
        assert inclusion is not None, code
        assert inclusion.threshold_yuan == Decimal(activity.threshold_wan * 10_000), code


def test_a_core_source_must_be_protected(tmp_path: Path) -> None:
    for layer in ("ods", "dwd"):
        (tmp_path / layer).mkdir()
    ods = (ROOT / "warehouse_layers/ods/ods_gov_enterprise_registry.yaml").read_text("utf-8")
    (tmp_path / "ods/ods_gov_enterprise_registry.yaml").write_text(ods, "utf-8")
    dwd = """\
name: dwd_e
layer: dwd
domain: government
owner_department: 市市场监管局
description: {zh: 测试, en: Test}
retention_days: 1
upstream: [ods_gov_enterprise_registry]
columns:
  - name: legal_rep_id
    type: string
    source: legal_rep_id
    rule: resident_id
    description: {zh: 身份证号, en: Id}
"""
    (tmp_path / "dwd/dwd_e.yaml").write_text(dwd, "utf-8")
    with pytest.raises(ContractError, match=r"columns\.0\.pii: ods_gov_enterprise_registry"):
        load_contracts(tmp_path)
