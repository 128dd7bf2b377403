"""The national code standards as GX expectations at the DWD→DWS gate (quality/expectations.py).

A DWD column kept in clear whose rule is a code standard (USCC, 身份证, GB/T 2260, MCC) gets a
`code` check; its hash or mask does not. Each expectation counts exactly the values its standard
rejects (python-stdnum for check characters, the packaged lists for codes) and skips nulls, and
a quarantine moves exactly the rows GX counted.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from stdnum.cn import ric, uscc

from citylake.settings import Settings
from quality.gate import GateBlocked, enforce, validate
from quality.standard_codes import STANDARDS
from quality.suites import contract_checks
from tests.demo_contract import demo_sale_contract
from warehouse_layers.contract import CODE_RULES, TableContract

USCC_OK = "91431100MA4L00001" + uscc.calc_check_digit("91431100MA4L00001")
USCC_BAD = USCC_OK[:-1] + ("0" if USCC_OK[-1] != "0" else "1")  # a wrong check character
RID_OK = "43110220060307123" + ric.calc_check_digit("43110220060307123" + "0")
RID_BAD_DATE = "431102200613071239"  # month 13
RID_BAD_CHECK = RID_OK[:-1] + ("0" if RID_OK[-1] != "0" else "1")

COLUMNS = ("uscc", "legal_rep_id", "district_code", "mcc")
SCHEMA = "sale_id string, " + ", ".join(f"{c} string" for c in COLUMNS)
ROWS = [
    ("S1", USCC_OK, RID_OK, "431102", "5812"),
    ("S2", USCC_BAD, RID_BAD_DATE, "999999", "0000"),
    ("S3", None, RID_BAD_CHECK, "431100", "5411"),  # 431100: 永州市 itself, a division too
    ("S4", USCC_OK.lower(), None, None, None),  # stored values are upper case: lower is bad
]
BAD = {
    "uscc": [USCC_BAD, USCC_OK.lower()],
    "legal_rep_id": [RID_BAD_DATE, RID_BAD_CHECK],
    "district_code": ["999999"],
    "mcc": ["0000"],
}


def _coded(pii: bool = False, **policy: str) -> TableContract:
    """A DWD contract with one column per standard, each derived from a feed by its rule; with
    `pii`, the 身份证 is kept only as its mask (as dwd_enterprise keeps it)."""

    def column(name: str, rule: str, **more: str) -> dict:
        return {"name": name, "type": "string", "source": name, "rule": rule,
                "description": {"zh": name, "en": name}, **more}  # fmt: skip

    masked = {"pii": "mask_id", "classification": "敏感"} if pii else {}
    return demo_sale_contract(
        [
            column("uscc", "uscc"),
            column("legal_rep_id", "resident_id", **masked),
            column("district_code", "division"),
            column("mcc", "mcc"),
        ],
        sale_id={"source": "sale_id", "rule": "key"},
        gate_policy=policy,
    )


def test_a_code_check_for_each_column_kept_in_clear() -> None:
    checks = contract_checks(_coded())
    names = {c.name: c.row.reason for c in checks if c.row}
    assert {n: r for n, r in names.items() if r == "gate_code"} == {
        "uscc is a valid USCC (GB 32100)": "gate_code",
        "legal_rep_id is a valid 身份证号 (GB 11643)": "gate_code",
        "district_code is a GB/T 2260 division code": "gate_code",
        "mcc is an ISO 18245 MCC": "gate_code",
    }
    standards = {c.name.split(" ")[0]: getattr(c.expectation, "standard", None) for c in checks}
    assert standards["uscc"] == "uscc" and standards["district_code"] == "division"
    assert set(STANDARDS) == {rule.value for rule in CODE_RULES}  # every standard rule has one
    masked = _coded(pii=True)
    assert "legal_rep_id.code" not in masked.check_keys()  # a mask is no 身份证号
    assert [k for k in masked.check_keys() if k.endswith(".code")] == [
        "uscc.code",
        "district_code.code",
        "mcc.code",
    ]


def test_the_real_contracts_check_their_codes(lake: Settings) -> None:
    from pipelines import tables

    enterprise = tables.contract("dwd_enterprise", lake)
    codes = [k for k in enterprise.check_keys() if k.endswith(".code")]
    assert codes == ["uscc.code", "district_code.code"]  # the legal rep only hashed and masked


def test_a_code_check_may_quarantine_its_rows() -> None:
    assert _coded(**{"uscc.code": "quarantine"}).policy("uscc.code") == "quarantine"
    with pytest.raises(ValidationError, match="does not declare"):
        _coded(pii=True, **{"legal_rep_id.code": "warn"})


@pytest.mark.spark
def test_each_standard_counts_exactly_the_codes_it_rejects(spark, lake: Settings) -> None:
    rows = spark.createDataFrame(
        ROWS, "sale_id string, " + ", ".join(f"{c} string" for c in COLUMNS)
    )
    checks = [c for c in contract_checks(_coded()) if c.row and c.row.reason == "gate_code"]
    result = validate(rows, checks, gate="dwd→dws", table="dwd_demo_sale", settings=lake)
    outcome = {c.check.split(" ")[0]: c for c in result.checks}
    for column, bad in BAD.items():
        check = outcome[column]
        assert not check.success, column
        assert check.unexpected_count == len(bad), column
        assert sorted(check.examples) == sorted(bad), column
    # What a quarantine would move: the rows GX counted, by the same predicate.
    for check in checks:
        assert check.row is not None
        moved = [r[check.row.column] for r in rows.where(check.row.failing()).collect()]
        assert sorted(moved) == sorted(BAD[check.row.column]), check.name


@pytest.mark.spark
def test_valid_codes_pass_and_a_bad_one_blocks_by_default(spark, lake: Settings) -> None:
    # The checks of the columns here (a real DWD table also carries its delivered line).
    checks = [c for c in contract_checks(_coded()) if not c.name.startswith("_")]
    good = spark.createDataFrame([ROWS[0]], SCHEMA)
    assert not enforce(good, checks, gate="dwd→dws", table="t", settings=lake).failed
    bad = spark.createDataFrame([ROWS[0], ("S9", USCC_OK, RID_OK, "431102", "0000")], SCHEMA)
    with pytest.raises(GateBlocked, match=r"mcc is an ISO 18245 MCC: 1 rows .* e\.g\. 0000"):
        enforce(bad, checks, gate="dwd→dws", table="t", settings=lake)


def test_an_unknown_standard_is_refused_when_the_suite_is_written() -> None:
    from quality.expectations import ExpectColumnValuesToMeetCodeStandard

    with pytest.raises(ValueError, match="unknown code standard 'isbn': known are division, mcc"):
        ExpectColumnValuesToMeetCodeStandard(column="code", standard="isbn")
    assert ExpectColumnValuesToMeetCodeStandard(column="code", standard="mcc").standard == "mcc"
