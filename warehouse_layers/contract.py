"""The typed model of a table contract and its loader.

A contract says, once, what a table is: its layer, owner department, bilingual description,
columns (type, nullability, description, classification level, checks, and for DWD the
normalization rule that derives it from the ODS column of the same feed), primary key,
partitioning and retention. DDL, quality suites, quarantine rules and catalog entries are all
generated from it. A bad contract is rejected with its file and the offending field named.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LAYERS = ("ods", "dwd", "dws", "ads")
_SPARK_TYPE = re.compile(
    r"^(string|boolean|int|bigint|smallint|double|float|date|timestamp|"
    r"decimal\(\d{1,2},\d{1,2}\)|array<string>|map<string,bigint>)$"
)


class Classification(StrEnum):
    """PII / sensitivity levels used for catalog tags and access control."""

    GENERAL = "一般"
    SENSITIVE = "敏感"
    CORE = "核心"


class Rule(StrEnum):
    """Normalization rules (pipelines/normalize.py): how a raw ODS string becomes a typed value."""

    TEXT = "text"  # trim, full-width -> half-width, empty -> null
    KEY = "key"  # text, upper-case
    ENUM = "enum"  # text folded case-insensitively to the spelling of one of `values`
    FEN = "fen"  # integer amount in fen; '¥', ',' stripped
    YUAN = "yuan"  # decimal(18,2) amount in yuan
    DECIMAL = "decimal"  # a measured quantity (liters, degrees) as the column's decimal or double
    TIMESTAMP = "timestamp"  # ISO 8601 with offset, or local time in +08:00
    DATE = "date"  # 2024-01-05, 2024/1/5, 2024年1月5日, 20240105
    USCC = "uscc"  # GB 32100 unified social credit code, check character verified
    RESIDENT_ID = "resident_id"  # GB 11643 身份证号, check character verified
    DIVISION = "division"  # GB/T 2260 6-digit code, must exist
    MCC = "mcc"  # ISO 18245 merchant category code, must exist
    INDUSTRY = "industry"  # GB/T 4754-2017 4-digit class code of a division (01-97) it has
    PERIOD = "period"  # a month as YYYYMM; 2024-01, 2024/1 and 2024年1月 too
    INTEGER = "integer"  # a whole number such as a headcount; thousands separators allowed


# Rules whose values are codes of a national standard: the DWD gate checks a column kept in
# clear against its standard once more (check kind `code`, quality/expectations.py).
CODE_RULES = (Rule.USCC, Rule.RESIDENT_ID, Rule.DIVISION, Rule.MCC)


class Pii(StrEnum):
    """How a DWD column keeps personal data it derives from a source: never in clear.

    The source is validated by the column's rule first; only the protected form is stored.
    """

    HASH = "hash"  # HMAC-SHA256 (hex) under settings.pii_key: joins without the clear value
    MASK_ID = "mask_id"  # first 4 and last 4 characters kept: 4311**********123X
    MASK_NAME = "mask_name"  # the surname kept, each further character starred: 张*, 欧阳**


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^_?[a-z][a-z0-9_]*$")]
    type: str
    nullable: bool = True
    description: Text
    classification: Classification = Classification.GENERAL
    # Checks: enforced row by row in DWD (quarantine) and as expectations by the quality gates.
    values: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    # DWD only: derive this column from the feed's ODS column `source` with `rule`.
    source: str | None = None
    rule: Rule | None = None
    # DWD only: store only this protected form of the (personal) value the rule derives.
    pii: Pii | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.replace(" ", "").lower()
        if not _SPARK_TYPE.match(value):
            raise ValueError(f"unsupported type {value!r}")
        if value.startswith("decimal("):
            precision, scale = (int(n) for n in value[8:-1].split(","))
            if not 1 <= precision <= 38 or scale > precision:
                raise ValueError(f"{value}: precision must be 1..38 and scale <= precision")
        return value

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:  # not a ValueError: pydantic would not report it as a field
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _rule_needs_source(self) -> Column:
        if (self.rule is None) != (self.source is None):
            raise ValueError("`source` and `rule` go together")
        if self.rule is Rule.ENUM and not self.values:
            raise ValueError("rule `enum` needs `values`")
        if self.rule is Rule.DECIMAL and not self.type.startswith(("decimal(", "double", "float")):
            raise ValueError("rule `decimal` needs a decimal, double or float column")
        if self.pii is not None:
            if self.rule is None:
                raise ValueError("`pii` protects the value a `rule` derives: give the rule")
            if self.type != "string" or self.classification is Classification.GENERAL:
                raise ValueError("a `pii` column is a string classified 敏感 or 核心")
        return self

    @property
    def has_code_check(self) -> bool:
        """Kept in clear, the value is a code of a standard the DWD gate checks again (a
        hash or mask of it is no such code)."""
        return self.rule in CODE_RULES and self.pii is None

    def ddl(self) -> str:
        not_null = "" if self.nullable else " NOT NULL"
        comment = self.description.zh.replace("'", "\\'")
        return f"`{self.name}` {self.type.upper()}{not_null} COMMENT '{comment}'"


Schedule = Literal["@hourly", "@daily", "@monthly"]
GatePolicy = Literal["block", "quarantine", "warn"]
# The check kinds a row fails on its own: a `quarantine` policy moves exactly those rows out.
# Key uniqueness is a property of a set of rows; no single row can be moved out for it.
ROW_CHECKS = ("not_null", "values", "range", "pattern", "code")
_NUMERIC = re.compile(r"^(int|bigint|smallint|double|float|decimal\(.*\))$")


class References(BaseModel):
    """Cross check `<column>.references`: every value of `column` in the rows a gate judges
    exists in the same-named column of `table` (a settlement's merchant is a registered one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["references"]
    column: str
    table: Annotated[str, Field(pattern=r"^(ods|dwd|dws|ads)_[a-z0-9_]+$")]

    @property
    def key(self) -> str:
        return f"{self.column}.references"

    def describe(self) -> str:
        return f"{self.column} exists in {self.table}"

    def columns(self) -> tuple[str, ...]:
        return (self.column,)


class DailyBand(BaseModel):
    """Cross check `<day>.daily_band`: a day's total (the sum of `add` minus the sum of
    `subtract` over its rows) lies within [low, high] × the median total of the previous
    `window` days that have rows, among the 2 × `window` calendar days before it (the scan's
    bound, quality/cross_checks.py). A day with fewer than `min_days` such days before it is
    not judged: a young table has no normal to compare with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["daily_band"]
    day: str
    add: tuple[str, ...] = Field(min_length=1)
    subtract: tuple[str, ...] = ()
    window: int = Field(default=28, ge=1, le=366)
    min_days: int = Field(default=14, ge=1)
    low: float = Field(ge=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _band(self) -> DailyBand:
        if self.low >= self.high:
            raise ValueError(f"band low {self.low} must be below high {self.high}")
        if self.min_days > self.window:
            raise ValueError(f"min_days {self.min_days} exceeds the window of {self.window} days")
        return self

    @property
    def key(self) -> str:
        return f"{self.day}.daily_band"

    @property
    def measure(self) -> str:
        return " + ".join(self.add) + "".join(f" − {c}" for c in self.subtract)

    def describe(self) -> str:
        return (
            f"daily {self.measure} by {self.day} within {self.low:g}–{self.high:g} × median "
            f"of the previous {self.window} days (judged from {self.min_days} days)"
        )

    def columns(self) -> tuple[str, ...]:
        return (self.day, *self.add, *self.subtract)


# Checks a single column cannot say (quality/cross_checks.py evaluates them). They warn unless
# the contract's `gate_policy` says otherwise: a new one must not block a running city.
CrossCheck = Annotated[References | DailyBand, Field(discriminator="kind")]
CROSS_CHECK_POLICY: GatePolicy = "warn"


class Deadline(BaseModel):
    """When one period's delivery of a feed is due: `days` after the period's last day, at
    `time` o'clock in `utc_offset` (the city's time, +08:00).

    A feed's period follows its schedule: a daily feed's is its business date, a monthly feed's
    the calendar month of the business date. An hourly feed is judged per business date too:
    the delivery log knows the date a delivery is for, not the hour. So ``days: 1, time:
    "09:00"`` is T+1 09:00 for a daily feed, and ``days: 15`` is the 15th of the next month for
    a monthly one (the month's last day + 15 days, whatever the month's length).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # At least the day after the period's last day: nothing is due before its period is over;
    # at most two months after it, which catches a typo such as 150 for 15.
    days: int = Field(ge=1, le=62)
    time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    utc_offset: Annotated[str, Field(pattern=r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$")] = "+08:00"

    @property
    def _offset_seconds(self) -> int:
        sign = -1 if self.utc_offset.startswith("-") else 1
        hours, minutes = self.utc_offset[1:].split(":")
        return sign * (int(hours) * 3600 + int(minutes) * 60)

    @property
    def seconds(self) -> int:
        """Seconds from 00:00 UTC of the period's last day to the deadline: what the scorecard
        model adds to the day (it compares instants, whatever the session's time zone)."""
        hours, minutes = self.time.split(":")
        local = self.days * 86400 + int(hours) * 3600 + int(minutes) * 60
        return local - self._offset_seconds

    def describe(self, period: Literal["day", "month"]) -> str:
        """The deadline in the words of the data dictionary, e.g. ``T+1 09:00 (+08:00)``."""
        at = f"{self.time} ({self.utc_offset})"
        if period == "day":
            return f"T+{self.days} {at}"
        if self.days <= 28:
            return f"次月{self.days}日 (day {self.days} of the next month) {at}"
        return f"月末后{self.days}天 ({self.days} days after the month's end) {at}"


# The default rule, for a feed whose contract names no deadline: daily (and hourly) data is due
# T+1 09:00 Beijing time, when the morning briefing reads yesterday; monthly data by the 15th
# of the next month, 18:00, the close of the statutory monthly filing period (征期).
DEFAULT_DEADLINES: dict[str, Deadline] = {
    "@hourly": Deadline(days=1, time="09:00"),
    "@daily": Deadline(days=1, time="09:00"),
    "@monthly": Deadline(days=15, time="18:00"),
}


class Feed(BaseModel):
    """How a source feed arrives (ODS contracts only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    channel: Literal["landing", "database", "exchange"]
    formats: tuple[Literal["csv", "xlsx", "jsonl"], ...] = ("csv", "xlsx", "jsonl")
    key: tuple[str, ...]
    schedule: Schedule = "@daily"
    # When each period's delivery is due (the default rule of its schedule when not given).
    deadline: Deadline
    # Share of a delivery's rows that may be quarantined before the ODS->DWD gate blocks.
    max_reject_rate: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _default_deadline(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("deadline") is None:
            schedule = data.get("schedule", "@daily")
            # An unknown schedule is reported by its own field; the daily rule stands in.
            default = DEFAULT_DEADLINES.get(schedule, DEFAULT_DEADLINES["@daily"])
            return {**data, "deadline": default}
        return data

    @property
    def period(self) -> Literal["day", "month"]:
        """What one delivery is due for: a business date, or a calendar month of them."""
        return "month" if self.schedule == "@monthly" else "day"


# Every ODS table carries these lineage columns after the feed's own, so each row can be traced
# to the exact delivered file and line. Declared here once instead of in eleven YAML files.
ODS_LINEAGE_COLUMNS = (
    Column(
        name="_delivery_id",
        type="string",
        nullable=False,
        description=Text(zh="交付批次标识(文件内容哈希)", en="Delivery id (content hash)"),
    ),
    Column(
        name="_business_date",
        type="date",
        nullable=False,
        description=Text(zh="交付业务日期", en="Business date of the delivery"),
    ),
    Column(
        name="_source_file",
        type="string",
        nullable=False,
        description=Text(zh="来源文件", en="Source file"),
    ),
    Column(
        name="_source_line",
        type="bigint",
        nullable=False,
        description=Text(zh="来源行号", en="Line (or row) in the source file"),
    ),
    Column(
        name="_ingested_at",
        type="timestamp",
        nullable=False,
        description=Text(zh="入湖时间", en="Ingestion time"),
    ),
)


# DWD tables derived by rules keep the position of the delivered line they came from.
DWD_LINEAGE_COLUMNS = tuple(
    c for c in ODS_LINEAGE_COLUMNS if c.name in ("_delivery_id", "_source_file", "_source_line")
)


class TableContract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^(ods|dwd|dws|ads)_[a-z0-9_]+$")]
    layer: Literal["ods", "dwd", "dws", "ads"]
    domain: Literal["government", "payment", "fuel", "merchant", "platform"]
    owner_department: str = Field(min_length=1)
    description: Text
    columns: tuple[Column, ...] = Field(min_length=1)
    primary_key: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    retention_days: int = Field(gt=0)
    feed: Feed | None = None
    upstream: tuple[str, ...] = Field(default=(), description="Tables this one is built from")
    # A DWS/ADS table whose rows are months, keyed by this date column (each month's first
    # day): a build rewrites the months its restated days fall in, not the whole table. Only
    # for a table whose month depends on that month's inputs alone (no growth against another
    # month, which must stay FULL).
    month_column: str | None = None
    # The gate policy of single checks (quality/suites.py), keyed `<column>.<kind>` (kind:
    # not_null, values, range, pattern) or `primary_key.unique`: `block` (the default) stops
    # promotion of the table and everything downstream of it, `quarantine` (row-level checks of
    # a DWD table that names its delivered lines) moves the failing rows into dwd_quarantine and
    # promotes the rest, `warn` records the failure (gate outcome, work order; no alert) and lets
    # it through. Rows breaking a column's rule are quarantined in DWD regardless. Cross checks
    # (`cross_checks`, keyed `<column>.references`, `<day>.daily_band`) default to `warn`.
    gate_policy: dict[str, GatePolicy] = Field(default_factory=dict)
    # Checks across rows or tables, judged at the DWD→DWS gate beside the column checks.
    cross_checks: tuple[CrossCheck, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TableContract:
        if not self.name.startswith(f"{self.layer}_"):
            raise ValueError(f"name must start with the layer prefix '{self.layer}_'")
        if self.layer == "ods" and self.feed is not None:
            object.__setattr__(self, "columns", self.columns + ODS_LINEAGE_COLUMNS)
        if self.layer == "dwd" and any(c.rule for c in self.columns):
            object.__setattr__(self, "columns", self.columns + DWD_LINEAGE_COLUMNS)
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate columns: {duplicates}")
        for group, cols in (("primary_key", self.primary_key), ("partition_by", self.partition_by)):
            unknown = [c for c in cols if c not in names]
            if unknown:
                raise ValueError(f"{group} names unknown columns {unknown}")
        if self.month_column is not None:
            if self.layer not in ("dws", "ads") or self.partition_by:
                raise ValueError("month_column is for an unpartitioned DWS/ADS table")
            if self.month_column not in names or self.column(self.month_column).type != "date":
                raise ValueError(f"month_column {self.month_column!r} is not a date column")
        if self.feed is not None:
            if self.layer != "ods":
                raise ValueError("only ODS contracts declare a feed")
            unknown = [c for c in self.feed.key if c not in names]
            if unknown:
                raise ValueError(f"feed.key names unknown columns {unknown}")
        if self.layer != "dwd" and any(c.rule for c in self.columns):
            raise ValueError("normalization rules (`rule`) belong to DWD contracts")
        types = {c.name: c.type for c in self.columns}
        for i, check in enumerate(self.cross_checks):
            unknown = [c for c in check.columns() if c not in types]
            if unknown:
                raise ValueError(f"cross_checks.{i} ({check.key}) names unknown columns {unknown}")
            if isinstance(check, DailyBand):
                if types[check.day] != "date":
                    raise ValueError(f"cross_checks.{i}: day column {check.day!r} is not a date")
                amounts = [c for c in (*check.add, *check.subtract) if not _NUMERIC.match(types[c])]
                if amounts:
                    raise ValueError(f"cross_checks.{i}: {amounts} are not numeric columns")
        keys = [c.key for c in self.cross_checks]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"cross_checks declares {twice} more than once")
        unknown = sorted(set(self.gate_policy) - set(self.check_keys()))
        if unknown:
            raise ValueError(
                f"gate_policy names checks the contract does not declare: {unknown} "
                f"(declared: {self.check_keys()})"
            )
        quarantined = sorted(k for k, p in self.gate_policy.items() if p == "quarantine")
        not_rows = [k for k in quarantined if k.rsplit(".", 1)[1] not in ROW_CHECKS]
        if not_rows:
            raise ValueError(
                f"gate_policy `quarantine` needs a row-level check ({', '.join(ROW_CHECKS)}), "
                f"not {not_rows}: no single row fails it, so none can be moved out"
            )
        if quarantined and (self.layer != "dwd" or "_source_line" not in names):
            raise ValueError(
                f"gate_policy `quarantine` ({quarantined}) needs a DWD table whose rows name "
                "their delivered line (columns derived from a feed by `rule`)"
            )
        return self

    def check_keys(self) -> list[str]:
        """The keys of the checks the contract declares, as `gate_policy` names them."""
        keys = []
        for c in self.columns:
            declared = {
                "not_null": not c.nullable,
                "values": bool(c.values),
                "range": c.min is not None or c.max is not None,
                "pattern": bool(c.pattern),
                "code": c.has_code_check,
            }
            keys += [f"{c.name}.{kind}" for kind, yes in declared.items() if yes]
        keys += ["primary_key.unique"] if self.primary_key else []
        return keys + [c.key for c in self.cross_checks]

    def policy(self, check_key: str) -> GatePolicy:
        cross = any(c.key == check_key for c in self.cross_checks)
        return self.gate_policy.get(check_key, CROSS_CHECK_POLICY if cross else "block")

    @property
    def path_parts(self) -> tuple[str, str]:
        return self.layer, self.name

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def feed_columns(self) -> tuple[Column, ...]:
        """The columns a producer delivers (ODS contracts): everything but lineage columns."""
        return tuple(c for c in self.columns if not c.name.startswith("_"))

    def spark_schema_ddl(self) -> str:
        return ", ".join(f"`{c.name}` {c.type}" for c in self.columns)

    def create_table_ddl(self, location: str) -> str:
        """Delta DDL for this table at `location` (path-based, no metastore needed)."""
        columns = ",\n  ".join(c.ddl() for c in self.columns)
        partition = (
            f"\nPARTITIONED BY ({', '.join(f'`{c}`' for c in self.partition_by)})"
            if self.partition_by
            else ""
        )
        comment = self.description.zh.replace("'", "\\'")
        props = {
            "citylake.layer": self.layer,
            "citylake.domain": self.domain,
            "citylake.owner_department": self.owner_department,
            "citylake.primary_key": ",".join(self.primary_key),
            "delta.logRetentionDuration": f"interval {self.retention_days} days",
            "delta.deletedFileRetentionDuration": "interval 7 days",
        }
        tblprops = ",\n  ".join(f"'{k}' = '{v}'" for k, v in props.items())
        return (
            f"CREATE TABLE IF NOT EXISTS delta.`{location}` (\n  {columns}\n)\nUSING DELTA"
            f"{partition}\nCOMMENT '{comment}'\nTBLPROPERTIES (\n  {tblprops}\n)"
        )

    def add_columns_ddl(self, location: str, existing: set[str]) -> str | None:
        """DDL that adds the contract's columns missing from a table of an older contract.

        Only additions evolve in place (new columns are null in earlier rows); a rename, type
        change or removal needs a migration and is refused by the writer's schema check.
        """
        new = [c for c in self.columns if c.name not in existing]
        if not new:
            return None
        if any(not c.nullable for c in new):
            names = [c.name for c in new if not c.nullable]
            raise ContractError(
                f"{self.name}: cannot add NOT NULL columns {names} to an existing table"
            )
        return f"ALTER TABLE delta.`{location}` ADD COLUMNS ({', '.join(c.ddl() for c in new)})"


class ContractError(ValueError):
    """A contract file that cannot be used, with the file and the field named."""


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"invalid table contract {path}:"]
    for err in exc.errors():
        location = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  field {location}: {err['msg']}")
    return "\n".join(lines)


def load_contract(path: Path) -> TableContract:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ContractError(f"invalid table contract {path}: not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ContractError(f"invalid table contract {path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"invalid table contract {path}: expected a mapping at top level")
    try:
        contract = TableContract.model_validate(data)
    except ValidationError as exc:
        raise ContractError(_format_errors(path, exc)) from exc
    if path.stem != contract.name:
        raise ContractError(
            f"invalid table contract {path}: field name: {contract.name!r} must match the file name"
        )
    if path.parent.name != contract.layer:
        raise ContractError(
            f"invalid table contract {path}: field layer: {contract.layer!r} but the file is "
            f"in folder {path.parent.name!r}"
        )
    return contract


def feed_table(contracts: dict[str, TableContract], feed: str) -> TableContract:
    """The ODS contract that declares `feed`; a clear error naming the known feeds otherwise."""
    for table in contracts.values():
        if table.feed is not None and table.feed.name == feed:
            return table
    known = sorted(t.feed.name for t in contracts.values() if t.feed)
    raise KeyError(f"unknown feed {feed!r}; known feeds: {', '.join(known)}")


def input_roots(name: str, contracts: dict[str, TableContract]) -> set[str]:
    """The tables at the bottom of `name`'s lineage, following the contracts' `upstream`: ODS
    tables, and tables built from no other table (dimensions from packages or contracts, the
    quarantine, gate outcomes). A table without upstream is its own root."""
    table = contracts[name]
    if table.layer == "ods" or not table.upstream:
        return {name}
    return {root for parent in table.upstream for root in input_roots(parent, contracts)}


def feeds_of(name: str, contracts: dict[str, TableContract]) -> tuple[str, ...]:
    """The feeds whose delivered rows `name` derives from (sorted; empty for a table from none,
    such as a dimension from a package). Table names unknown to the contracts derive from none."""
    if name not in contracts:
        return ()
    roots = (contracts[root] for root in input_roots(name, contracts))
    return tuple(sorted(t.feed.name for t in roots if t.feed is not None))


@cache
def load_contracts(root: Path) -> dict[str, TableContract]:
    """All contracts under `root`, by table name, with cross-table references checked."""
    contracts: dict[str, TableContract] = {}
    for path in sorted(root.glob("*/*.yaml")):
        contract = load_contract(path)
        contracts[contract.name] = contract
    for contract in contracts.values():
        where = f"invalid table contract {root / contract.layer / contract.name}.yaml"
        unknown = [u for u in contract.upstream if u not in contracts]
        if unknown:
            raise ContractError(f"{where}: field upstream: unknown tables {unknown}")
        for i, check in enumerate(contract.cross_checks):
            if isinstance(check, References):
                target = contracts.get(check.table)
                if target is None or check.column not in {c.name for c in target.columns}:
                    raise ContractError(
                        f"{where}: field cross_checks.{i}.table: no table {check.table} with a "
                        f"column {check.column!r}"
                    )
        if any(c.rule for c in contract.columns):
            source = contracts[contract.upstream[0]] if contract.upstream else None
            if source is None or source.feed is None:
                raise ContractError(
                    f"{where}: field upstream: the first upstream table must be the ODS table "
                    "of the feed that `source` columns refer to"
                )
            delivered = {c.name for c in source.feed_columns}
            for i, col in enumerate(contract.columns):
                if col.source and col.source not in delivered:
                    raise ContractError(
                        f"{where}: field columns.{i}.source: {source.name} has no column "
                        f"{col.source!r}"
                    )
                # 核心 data (a 身份证号) leaves ODS only hashed or masked.
                if (
                    col.source
                    and col.pii is None
                    and source.column(col.source).classification is Classification.CORE
                ):
                    raise ContractError(
                        f"{where}: field columns.{i}.pii: {source.name}.{col.source} is 核心 "
                        "data: derive it only with `pii: hash` or a mask"
                    )
    return contracts
