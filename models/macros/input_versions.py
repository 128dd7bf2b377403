"""@input_versions('<domain>'): the Delta versions of the domain's ODS inputs, as JSON.

`citylake build` pins the ODS versions it reads and puts them in the Spark conf
(``citylake.input_versions.<domain>``); every ADS row carries them, so a regulator can rebuild
the row by time travel. While loading and in unit tests the macro renders '{}', so neither a
model's fingerprint nor its tests depend on table history.
"""

from sqlglot import exp
from sqlmesh import macro

PLACEHOLDER = "{}"


@macro()
def input_versions(evaluator, domain):  # type: ignore[no-untyped-def]
    if evaluator.runtime_stage not in ("evaluating", "auditing"):
        return exp.Literal.string(PLACEHOLDER)
    name = domain.this if isinstance(domain, exp.Literal) else str(domain)
    spark = evaluator.engine_adapter.spark
    return exp.Literal.string(spark.conf.get(f"citylake.input_versions.{name}", PLACEHOLDER))
