"""@input_versions(): the Delta versions of the ODS tables this model descends from, as JSON.

`citylake build` pins the ODS versions it reads and puts, for each model, those of its ODS
ancestors in the Spark conf (``citylake.input_versions.<table>``); every ADS row carries them,
so a regulator can rebuild the row by time travel. While loading and in unit tests the macro
renders '{}', so neither a model's fingerprint nor its tests depend on table history.
"""

from sqlglot import exp
from sqlmesh import macro

PLACEHOLDER = "{}"


@macro()
def input_versions(evaluator):  # type: ignore[no-untyped-def]
    if evaluator.runtime_stage not in ("evaluating", "auditing"):
        return exp.Literal.string(PLACEHOLDER)
    table = evaluator.this_model.split(".")[-1].strip('"`')
    spark = evaluator.engine_adapter.spark
    return exp.Literal.string(spark.conf.get(f"citylake.input_versions.{table}", PLACEHOLDER))
