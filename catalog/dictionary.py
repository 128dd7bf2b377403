"""The data dictionary (数据字典): every table's contract rendered for people, in Chinese first.

The same contracts will be published to OpenMetadata (issue #8); this is the offline form a
department can read in the repository or receive as a file.
"""

from __future__ import annotations

from warehouse_layers.contract import TableContract

LAYER_TITLES = {"ods": "ODS 贴源层", "dwd": "DWD 明细层", "dws": "DWS 汇总层", "ads": "ADS 应用层"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_section(table: TableContract) -> str:
    lines = [
        f"### `{table.name}` — {table.description.zh}",
        "",
        f"{table.description.en}. 责任部门 owner: **{table.owner_department}**; "
        f"domain `{table.domain}`; retention {table.retention_days} days.",
    ]
    if table.primary_key:
        lines.append(f"主键 key: `{', '.join(table.primary_key)}`.")
    if table.partition_by:
        lines.append(f"分区 partitions: `{', '.join(table.partition_by)}`.")
    if table.upstream:
        lines.append("来源 built from: " + ", ".join(f"`{u}`" for u in table.upstream) + ".")
    if table.feed:
        lines.append(
            f"数据接口 feed `{table.feed.name}` via {table.feed.channel}, "
            f"key `{', '.join(table.feed.key)}`, schedule `{table.feed.schedule}`, "
            f"截止 due {table.feed.deadline.describe(table.feed.period)}."
        )
    if table.gate_policy:
        policies = ", ".join(f"`{k}` {v}" for k, v in sorted(table.gate_policy.items()))
        lines.append(f"质量门策略 gate policy: {policies}; every other column check blocks.")
    for check in table.cross_checks:  # each with its policy: they warn unless told otherwise
        lines.append(
            f"交叉检查 cross check `{check.key}` ({table.policy(check.key)}): {check.describe()}."
        )
    lines += [
        "",
        "| 字段 column | 类型 type | 必填 required | 分级 level | 说明 | description | 规则 rule |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in table.columns:
        checks = [f"{c.rule.value}({c.source})" if c.rule else ""]
        if c.pii:
            checks.append(f"→ {c.pii.value}")  # only the hash or mask is stored
        if c.values:
            checks.append("∈ {" + ", ".join(c.values) + "}")
        if c.min is not None:
            checks.append(f"≥ {c.min:g}")
        if c.max is not None:
            checks.append(f"≤ {c.max:g}")
        if c.pattern:
            checks.append(f"`{c.pattern}`")
        lines.append(
            f"| `{c.name}` | {c.type} | {'' if c.nullable else '是'} | {c.classification.value} | "
            f"{_cell(c.description.zh)} | {_cell(c.description.en)} | "
            f"{_cell(' '.join(x for x in checks if x))} |"
        )
    return "\n".join(lines)


def render(contracts: dict[str, TableContract]) -> str:
    parts = [
        "# 数据字典 Data dictionary",
        "",
        "Generated from `warehouse_layers/` by `citylake contracts docs`; do not edit.",
        "",
    ]
    for layer, title in LAYER_TITLES.items():
        tables = [t for t in contracts.values() if t.layer == layer]
        if tables:
            parts += [f"## {title}", ""]
            parts += [table_section(t) + "\n" for t in sorted(tables, key=lambda t: t.name)]
    return "\n".join(parts)
