"""`tables.one_of`: the same answers as PySpark's isin, the list sent to the JVM in one piece."""

from __future__ import annotations

import pyspark.sql.functions as F
import pytest

from pipelines.tables import one_of
from quality.standard_codes import division_codes


@pytest.mark.spark
def test_one_of_answers_as_isin_does(spark) -> None:
    codes = list(division_codes())
    rows = spark.createDataFrame([("431102",), ("999999",), (None,), ("",)], "v string")
    cases = {"codes": codes, "one": ["999999"], "none": []}
    got = rows.select(
        "v",
        *[one_of(F.col("v"), values).alias(f"{name}_one_of") for name, values in cases.items()],
        *[F.col("v").isin(values).alias(f"{name}_isin") for name, values in cases.items()],
    ).collect()
    for row in got:
        for name in cases:
            assert row[f"{name}_one_of"] == row[f"{name}_isin"], (row["v"], name)
    assert [r["codes_one_of"] for r in got] == [True, False, None, False]
    # A long list is one set lookup in the plan, as isin makes it.
    plan = rows.where(one_of(F.col("v"), codes))._jdf.queryExecution().optimizedPlan().toString()
    assert "INSET" in plan.upper()


@pytest.mark.spark
def test_a_value_holding_the_separator_is_refused(spark) -> None:
    with pytest.raises(ValueError, match="separator"):
        one_of(F.col("v"), ["a", "b\x1fc"])
