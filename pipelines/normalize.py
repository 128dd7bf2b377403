"""Normalization rules: raw ODS text -> typed DWD values, or a reason to quarantine the row.

Only what is unambiguous is fixed (full-width characters, stray spaces, `2024/1/5` and
`2024年1月5日` dates, `¥1,234.50`, lower-case check characters); everything else becomes a
reason code naming the column and the bad value. Rules are Spark column expressions so they run
wherever Spark runs; codes are checked against their standards by quality/standard_codes.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame
from pyspark.sql.types import StringType

from pipelines.gbt4754 import FIRST_DIVISION, LAST_DIVISION
from pipelines.widths import FULL_WIDTH, HALF_WIDTH
from quality.standard_codes import division_valid, mcc_valid, resident_id_valid, uscc_valid
from warehouse_layers.contract import Column, Pii, Rule, TableContract

TIMESTAMP_FORMATS = (
    "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]XXX",
    "yyyy-MM-dd HH:mm:ss[.SSSSSS][XXX]",
    "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]",  # no offset: local time in +08:00 (session time zone)
    "yyyy/M/d H:mm[:ss]",
    "yyyy年M月d日 H:mm[:ss]",
)
DATE_FORMATS = ("yyyy-MM-dd", "yyyy/M/d", "yyyy年M月d日", "yyyyMMdd")
PERIOD_FORMATS = ("yyyyMM", "yyyy-M", "yyyy/M", "yyyy年M月")  # year first: never ambiguous

# Reason codes a DWD rule can give; the regulator report translates them (quality/reasons.py).
PARSE_FAILURE = {
    Rule.FEN: "bad_amount",
    Rule.YUAN: "bad_amount",
    Rule.DECIMAL: "bad_number",
    Rule.TIMESTAMP: "bad_timestamp",
    Rule.DATE: "bad_date",
    Rule.USCC: "bad_uscc",
    Rule.RESIDENT_ID: "bad_resident_id",
    Rule.DIVISION: "bad_division_code",
    Rule.MCC: "bad_mcc",
    Rule.INDUSTRY: "bad_industry_code",
    Rule.ENUM: "bad_value",
    Rule.PERIOD: "bad_period",
    Rule.INTEGER: "bad_number",
}
REJECT_TYPE = "struct<code:string,column:string,value:string>"


# Any white space at either end: not only " " (all that F.trim removes) but the tab, the
# no-break space of spreadsheet and web copies and a stray "\r" of a CRLF file are as
# unambiguous as a space (the landing reader strips header names the same way).
_EDGE_SPACE = r"^[\s\p{Z}]+|[\s\p{Z}]+$"
_ASCII_SPACE = " \t\n\x0b\f\r"  # what `[\s\p{Z}]` matches among ASCII characters


def clean_text(col: SparkColumn) -> SparkColumn:
    """Trim and fold full-width ASCII to half-width; empty means absent.

    Most delivered values are plain ASCII, where folding changes nothing and trimming is a
    `btrim`: the character-by-character translation and the regex run only on the others
    (they were a tenth of a build's CPU when run on every value).
    """
    ascii_only = F.length(col) == F.octet_length(col)  # one byte per character in UTF-8
    text = F.when(ascii_only, F.btrim(col, F.lit(_ASCII_SPACE))).otherwise(
        F.regexp_replace(F.translate(col, FULL_WIDTH, HALF_WIDTH), _EDGE_SPACE, "")
    )
    # nullif, not when(text == "", null).otherwise(text): Spark evaluates nullif's argument
    # once, where the `when` cleaned each value twice (the ten columns of a city-day's 311 k
    # payment lines: 1.85 s, 0.70 s with nullif).
    return F.nullif(text, F.lit(""))


def _amount(
    text: SparkColumn, fraction: str, *, currency: bool = True
) -> tuple[SparkColumn, SparkColumn]:
    """(amount as plain digits, whether it is unambiguous) for `¥1,234.50`-style text.

    A currency sign goes (with any space beside it), unless `currency` is false: a quantity of
    liters has none. `,` or a space may separate thousands, but only between groups of three
    digits: `12,50` and `1.234,50` are decimal commas in much of the world, so reading them as
    1250 or 1.2345 would be a guess, not a fix.
    """
    bare = F.trim(F.regexp_replace(text, "[¥￥]", "")) if currency else text
    ok = bare.rlike(r"^-?([0-9]{1,3}([, ][0-9]{3})+|[0-9]+)" + fraction + "$")
    return F.regexp_replace(bare, "[, ]", ""), ok


@dataclass(frozen=True)
class Parsed:
    value: SparkColumn  # typed value, null when absent or unparsable
    ok: SparkColumn  # false when present but not parsable / not a known code


def parse(rule: Rule, raw: SparkColumn, column: Column) -> Parsed:
    """The delivered text `raw` read by `rule` for `column`."""
    return parse_clean(rule, clean_text(raw), column)


def parse_clean(rule: Rule, text: SparkColumn, column: Column) -> Parsed:
    """As ``parse``, for text that ``clean_text`` cleaned already."""
    if rule is Rule.TEXT:
        return Parsed(text, F.lit(True))
    if rule is Rule.KEY:
        return Parsed(F.upper(text), F.lit(True))
    if rule is Rule.ENUM:
        # Case is folded to the contract's own spelling, not to lower case: `Y` of a Y|N field
        # and `0D` of the fuel products must match too (lower-casing rejected them all).
        spelling = {v.lower(): v for v in column.values or ()}
        value = F.try_element_at(
            F.create_map(*[F.lit(x) for pair in spelling.items() for x in pair]), F.lower(text)
        )
        return Parsed(value, value.isNotNull())
    if rule is Rule.FEN:
        digits, grouped = _amount(text, "")  # "12.00" in a fen field is ambiguous
        ok = grouped & digits.rlike(r"^-?[0-9]{1,17}$")
        value = F.when(ok, digits.cast("bigint"))
        return Parsed(value, ok)
    if rule is Rule.YUAN:
        digits, grouped = _amount(text, r"(\.[0-9]{1,2})?")
        ok = grouped & digits.rlike(r"^-?[0-9]{1,16}(\.[0-9]{1,2})?$")
        return Parsed(F.when(ok, digits.cast("decimal(18,2)")), ok)
    if rule is Rule.DECIMAL:
        # More fraction digits than the column keeps would be rounded away: a guess, so a
        # reason. Too many integer digits fail the cast (try_cast gives null), also a reason.
        scale = re.fullmatch(r"decimal\(\d+,(\d+)\)", column.type)
        if scale is None:  # double or float: any number of fraction digits
            fraction = r"(\.[0-9]+)?"
        else:
            fraction = rf"(\.[0-9]{{1,{scale.group(1)}}})?" if int(scale.group(1)) else ""
        digits, grouped = _amount(text, fraction, currency=False)
        value = F.when(grouped, digits.try_cast(column.type))
        return Parsed(value, value.isNotNull())
    if rule is Rule.TIMESTAMP:
        value = F.coalesce(*[F.try_to_timestamp(text, F.lit(p)) for p in TIMESTAMP_FORMATS])
        return Parsed(value, value.isNotNull())
    if rule is Rule.DATE:
        value = F.coalesce(*[F.try_to_date(text, p) for p in DATE_FORMATS])
        return Parsed(value, value.isNotNull())
    if rule is Rule.USCC:
        # Spaces and hyphens between groups go, as stdnum.cn.uscc.compact() removes them (the
        # code's alphabet has neither). A 身份证 number is not compacted: ric.compact() keeps
        # its inner spaces, so stdnum rejects such a number and so do we.
        value = F.upper(F.regexp_replace(text, "[ -]", ""))
        return Parsed(value, uscc_valid(value))
    if rule is Rule.RESIDENT_ID:
        value = F.upper(text)
        return Parsed(value, resident_id_valid(value))
    if rule is Rule.DIVISION:
        return Parsed(text, division_valid(text))
    if rule is Rule.MCC:
        return Parsed(text, mcc_valid(text))
    if rule is Rule.INDUSTRY:
        # The division (first two digits) must be one of the standard's 01-97; the classes
        # within a division have no packaged list (pipelines/gbt4754.py).
        division = F.substring(text, 1, 2)
        known = division.between(f"{FIRST_DIVISION:02d}", f"{LAST_DIVISION:02d}")
        return Parsed(text, text.rlike(r"^[0-9]{4}$") & known)
    if rule is Rule.PERIOD:
        month = F.coalesce(*[F.try_to_date(text, p) for p in PERIOD_FORMATS])
        return Parsed(F.date_format(month, "yyyyMM"), month.isNotNull())
    if rule is Rule.INTEGER:
        # Grouped as amounts are (`1,234`, `1 234`), but with no currency sign and no decimals.
        grouped = text.rlike(r"^-?([0-9]{1,3}([, ][0-9]{3})+|[0-9]+)$")
        value = F.when(grouped, F.regexp_replace(text, "[, ]", "").try_cast("bigint"))
        return Parsed(value, value.isNotNull())
    raise ValueError(f"no parser for rule {rule}")


# Compound surnames (复姓) a masked name keeps whole, as in 欧阳**. One missing here is masked
# from its second character on: the display form then hides more, never less.
COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
    "司徒", "夏侯", "轩辕", "令狐", "钟离", "端木", "南宫", "西门", "独孤", "申屠", "澹台",
)  # fmt: skip


def _stars(n: SparkColumn) -> SparkColumn:
    return F.repeat(F.lit("*"), F.greatest(n, F.lit(0)))


def mask(kind: Pii, text: SparkColumn) -> SparkColumn:
    """The display form of personal data: `4311**********123X`, `张*`, `欧阳**`."""
    n = F.length(text)
    if kind is Pii.MASK_ID:
        kept = F.concat(F.substring(text, 1, 4), _stars(n - 8), F.substring(text, -4, 4))
        return F.when(n > 8, kept).otherwise(_stars(n))
    if kind is Pii.MASK_NAME:
        compound = (n > 2) & F.substring(text, 1, 2).isin(list(COMPOUND_SURNAMES))
        surname = F.when(compound, 2).otherwise(1)
        return F.concat(F.substring(text, 1, surname), _stars(n - surname))
    return _stars(n)  # a hash is no display form: show nothing of the value


@cache
def _hmac_sha256(key: str) -> Callable[[SparkColumn], SparkColumn]:
    secret = key.encode("utf-8")

    # Python's own hmac (RFC 2104) in a vectorized UDF: Spark has sha2 but no HMAC, and
    # rebuilding one from sha2 would put key material into the query plan as a literal.
    @F.pandas_udf(StringType())
    def hmac_sha256(values: pd.Series) -> pd.Series:
        return values.map(
            lambda v: (
                None
                if v is None
                else hmac.new(secret, v.encode("utf-8"), hashlib.sha256).hexdigest()
            )
        )

    return hmac_sha256


def protect(kind: Pii, value: SparkColumn, key: str) -> SparkColumn:
    """The only form of personal data a DWD column keeps: a keyed hash or a masked form."""
    if kind is Pii.HASH:
        return _hmac_sha256(key)(value)
    return mask(kind, value)


def reject(code: str, column: str, value: SparkColumn) -> SparkColumn:
    """Why a row is quarantined: (reason code, offending column, offending value as text)."""
    return F.struct(
        F.lit(code).alias("code"),
        F.lit(column).alias("column"),
        value.cast("string").alias("value"),
    )


def _shown(contract: TableContract) -> dict[str, Pii]:
    """How each source that feeds a `pii` column is shown in `_raw` and reject values."""
    shown: dict[str, Pii] = {}
    for col in contract.columns:
        # A mask is how the value is shown; a source only hashed shows nothing (all stars).
        if col.pii and col.source and (col.pii is not Pii.HASH or col.source not in shown):
            shown[col.source] = col.pii
    return shown


def normalize(ods: DataFrame, contract: TableContract, *, pii_key: str | None = None) -> DataFrame:
    """Apply `contract`'s rules to raw ODS rows.

    Returns the typed columns, the ODS lineage columns, `_raw` (the delivered values as JSON)
    and `_reject`: null for a good row, else the first broken rule as (code, column, value).
    A `pii` column keeps only its hash or mask, and its source appears masked in `_raw` and in
    reject values too: personal data never leaves ODS in clear (the file and line point to
    it). Hashes are keyed with `pii_key`, by default settings.pii_key.
    """
    shown = _shown(contract)
    if pii_key is None and any(c.pii is Pii.HASH for c in contract.columns):
        from citylake.settings import get_settings

        pii_key = get_settings().pii_key.get_secret_value()
    # Each source's text is cleaned once, in a projection of its own, and every rule, check
    # and masked form below reads it: inlined, the cleaning ran (and was planned, a py4j call
    # per function) up to four times per value. Spark keeps the two projections apart because
    # the cleaned column is used more than once and is not cheap to recompute.
    sources = sorted({c.source for c in contract.columns if c.source})
    clean = {s: f"_clean_{i}" for i, s in enumerate(sources)}
    ods = ods.select("*", *[clean_text(F.col(s)).alias(clean[s]) for s in sources])
    # Each rule's value and verdict in a projection of their own too: the checks below read a
    # value up to four times inside conditional branches, where Spark does not share common
    # subexpressions, so inlined they ran the rule's regexes again for every check (#4).
    ruled = [c for c in contract.columns if c.rule is not None and c.source is not None]
    parsed_columns = []
    for i, col in enumerate(ruled):
        assert col.rule is not None and col.source is not None
        parsed = parse_clean(col.rule, F.col(clean[col.source]), col)
        parsed_columns += [parsed.value.alias(f"_value_{i}"), parsed.ok.alias(f"_ok_{i}")]
    ods = ods.select("*", *parsed_columns)
    typed: list[SparkColumn] = []
    checks: list[SparkColumn] = []
    for i, col in enumerate(ruled):
        assert col.source is not None
        text = F.col(clean[col.source])
        raw = mask(shown[col.source], text) if col.source in shown else F.col(col.source)
        parsed = Parsed(F.col(f"_value_{i}"), F.col(f"_ok_{i}"))
        if col.pii is not None:
            # Checks below see what is stored (the hash or mask), as the quality gate does.
            stored = protect(col.pii, parsed.value, pii_key or "")
            parsed = Parsed(F.when(parsed.ok, stored), parsed.ok)
        typed.append(parsed.value.cast(col.type).alias(col.name))
        missing = text.isNull()
        if not col.nullable:
            checks.append(F.when(missing, reject("missing_value", col.name, raw)))
        checks.append(
            F.when(
                ~missing & ~parsed.ok,
                reject(PARSE_FAILURE.get(col.rule, "bad_value"), col.name, raw),
            )
        )
        if col.min is not None:
            checks.append(F.when(parsed.value < col.min, reject("out_of_range", col.name, raw)))
        if col.max is not None:
            checks.append(F.when(parsed.value > col.max, reject("out_of_range", col.name, raw)))
        if col.pattern is not None:
            checks.append(
                F.when(
                    ~missing & ~parsed.value.cast("string").rlike(col.pattern),
                    reject("bad_format", col.name, raw),
                )
            )
        if col.values and col.rule is not Rule.ENUM:
            checks.append(
                F.when(
                    ~missing & ~parsed.value.isin(list(col.values)),
                    reject("bad_value", col.name, raw),
                )
            )
    raw_json = F.to_json(
        F.struct(
            *[mask(shown[s], F.col(clean[s])).alias(s) if s in shown else F.col(s) for s in sources]
        )
    )
    lineage = [
        F.col(c)
        for c in ("_delivery_id", "_business_date", "_source_file", "_source_line", "_ingested_at")
    ]
    first_break = F.coalesce(*checks).cast(REJECT_TYPE) if checks else F.lit(None).cast(REJECT_TYPE)
    return ods.select(*typed, *lineage, raw_json.alias("_raw"), first_break.alias("_reject"))
