"""A small DWD contract (dwd_demo_sale) for tests of checks and gates: a sale id and the
columns a test needs, plus any other contract fields (gate_policy, cross_checks)."""

from __future__ import annotations

from typing import Any

from warehouse_layers.contract import TableContract


def demo_sale_contract(
    columns: list[dict[str, Any]], *, sale_id: dict[str, Any] | None = None, **fields: Any
) -> TableContract:
    """`sale_id` adds to the key column's declaration (e.g. the feed column it derives from)."""
    key = {"name": "sale_id", "type": "string", "nullable": False,
           "description": {"zh": "编号", "en": "Id"}, **(sale_id or {})}  # fmt: skip
    return TableContract.model_validate(
        {
            "name": "dwd_demo_sale",
            "layer": "dwd",
            "domain": "payment",
            "owner_department": "市商务局",
            "description": {"zh": "示例", "en": "Example"},
            "retention_days": 30,
            "primary_key": ["sale_id"],
            "columns": [key, *columns],
            **fields,
        }
    )
