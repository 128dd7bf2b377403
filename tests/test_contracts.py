"""Table contracts: every shipped one loads, DDL follows from it, a bad one names file and field.

Pure Python (YAML + pydantic): no Spark, no JVM.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citylake.cli import app
from warehouse_layers.contract import (
    ContractError,
    TableContract,
    feeds_of,
    input_roots,
    load_contract,
    load_contracts,
)

ROOT = Path(__file__).resolve().parent.parent / "warehouse_layers"
ODS_LINEAGE = ["_delivery_id", "_business_date", "_source_file", "_source_line", "_ingested_at"]
DWD_LINEAGE = ["_delivery_id", "_source_file", "_source_line"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def shipped() -> dict[str, TableContract]:
    return load_contracts(ROOT)


SHIPPED_NAMES = sorted(p.stem for p in ROOT.glob("*/*.yaml"))


# --- the shipped contracts ------------------------------------------------------------------


def test_every_shipped_contract_loads_and_names_match_files() -> None:
    contracts = shipped()
    assert SHIPPED_NAMES, "no contracts found under warehouse_layers/"
    assert sorted(contracts) == SHIPPED_NAMES
    for path in ROOT.glob("*/*.yaml"):
        contract = contracts[path.stem]
        assert contract.name == path.stem
        assert contract.layer == path.parent.name
        assert contract.name.startswith(f"{contract.layer}_")


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_lineage_columns_are_appended(name: str) -> None:
    contract = shipped()[name]
    names = [c.name for c in contract.columns]
    if contract.layer == "ods" and contract.feed is not None:
        assert names[-5:] == ODS_LINEAGE
        assert all(not contract.column(n).nullable for n in ODS_LINEAGE)
        # the producer's columns are everything else, in file order
        assert [c.name for c in contract.feed_columns] == names[:-5]
    elif contract.layer == "dwd" and any(c.rule for c in contract.columns):
        assert names[-3:] == DWD_LINEAGE
        assert "_ingested_at" not in names and "_business_date" not in names
    else:
        assert not set(ODS_LINEAGE) & set(names)
    assert len(names) == len(set(names))


def test_the_pay_transactions_feed_matches_the_feed_standard() -> None:
    contract = shipped()["ods_pay_transactions"]
    assert contract.feed is not None
    assert contract.feed.name == "pay_transactions"
    assert [c.name for c in contract.feed_columns] == [
        "txn_id", "merchant_id", "txn_time", "amount_fen", "channel", "status", "refund_of",
        "payer_region_code", "terminal_id", "updated_at",
    ]  # fmt: skip
    assert contract.feed.key == ("txn_id",)


@pytest.mark.parametrize(
    "name", [n for n in SHIPPED_NAMES if any(c.rule for c in shipped()[n].columns)]
)
def test_every_dwd_source_exists_in_its_upstream_ods_feed(name: str) -> None:
    contracts = shipped()
    contract = contracts[name]
    assert contract.layer == "dwd"
    upstream = contracts[contract.upstream[0]]
    assert upstream.layer == "ods" and upstream.feed is not None
    delivered = {c.name for c in upstream.feed_columns}
    sourced = [c for c in contract.columns if c.rule]
    assert sourced
    for col in sourced:
        assert col.source in delivered, f"{name}.{col.name} <- {col.source}"


def test_every_upstream_names_a_shipped_table() -> None:
    contracts = shipped()
    for contract in contracts.values():
        for upstream in contract.upstream:
            assert upstream in contracts, f"{contract.name} -> {upstream}"


def test_lineage_reaches_the_feeds_behind_a_table() -> None:
    contracts = shipped()
    assert input_roots("dws_trade_merchant_daily", contracts) == {
        "ods_pay_transactions",
        "ods_merchant_registry",
    }
    assert feeds_of("dws_fuel_station_product_daily", contracts) == (
        "fuel_deliveries", "fuel_sales", "fuel_stations", "fuel_tank_readings",
    )  # fmt: skip
    # a table built from no other table is its own root and derives from no feed
    assert input_roots("dwd_dim_district", contracts) == {"dwd_dim_district"}
    assert feeds_of("dwd_dim_district", contracts) == ()
    assert feeds_of("ods_gov_tax_monthly", contracts) == ("gov_tax_monthly",)
    assert feeds_of("no_such_table", contracts) == ()


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_table_and_column_is_described_in_chinese_and_english(name: str) -> None:
    contract = shipped()[name]
    assert CJK.search(contract.description.zh), contract.description.zh
    assert contract.description.en.strip()
    for col in contract.columns:
        assert col.description.zh.strip() and CJK.search(col.description.zh), (
            f"{name}.{col.name}: zh description {col.description.zh!r}"
        )
        assert col.description.en.strip(), f"{name}.{col.name}: no en description"


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_generated_ddl(name: str) -> None:
    contract = shipped()[name]
    ddl = contract.create_table_ddl("/tmp/x")
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS delta.`/tmp/x` (")
    assert "\nUSING DELTA" in ddl
    assert f"\nCOMMENT '{contract.description.zh}'" in ddl
    assert f"'delta.logRetentionDuration' = 'interval {contract.retention_days} days'" in ddl
    assert f"'citylake.owner_department' = '{contract.owner_department}'" in ddl
    for col in contract.columns:
        line = next(ln for ln in ddl.splitlines() if ln.strip().startswith(f"`{col.name}` "))
        assert f"`{col.name}` {col.type.upper()}" in line
        assert ("NOT NULL" in line) == (not col.nullable), line
        assert f"COMMENT '{col.description.zh}'" in line
    if contract.partition_by:
        cols = ", ".join(f"`{c}`" for c in contract.partition_by)
        assert f"\nPARTITIONED BY ({cols})" in ddl
    else:
        assert "PARTITIONED BY" not in ddl


def test_ddl_of_pay_transactions_in_detail() -> None:
    ddl = shipped()["ods_pay_transactions"].create_table_ddl("/tmp/x")
    assert "`txn_id` STRING COMMENT '交易流水号'" in ddl
    assert "`_source_line` BIGINT NOT NULL COMMENT '来源行号'" in ddl
    assert "PARTITIONED BY (`_business_date`)" in ddl
    assert "'delta.logRetentionDuration' = 'interval 1825 days'" in ddl
    assert ddl.index("USING DELTA") < ddl.index("PARTITIONED BY") < ddl.index("TBLPROPERTIES")


# --- feed deadlines --------------------------------------------------------------------------


def test_every_shipped_feed_names_its_deadline_in_its_contract() -> None:
    """Each feed says when it is due (the default rule is for feeds still to come)."""
    for path in (ROOT / "ods").glob("*.yaml"):
        contract = shipped()[path.stem]
        if contract.feed is not None:
            assert "  deadline: {days: " in path.read_text(encoding="utf-8"), path.name


@pytest.mark.parametrize(
    ("table", "period_end", "due"),
    [
        # daily: T+1 at the feed's hour, Beijing time
        ("ods_pay_transactions", dt.date(2024, 11, 5), "2024-11-06T06:00:00+08:00"),
        ("ods_merchant_registry", dt.date(2024, 11, 5), "2024-11-06T09:00:00+08:00"),
        ("ods_pay_settlements", dt.date(2024, 12, 31), "2025-01-01T12:00:00+08:00"),
        # hourly readings are judged per business date
        ("ods_fuel_tank_readings", dt.date(2024, 11, 5), "2024-11-06T09:00:00+08:00"),
        # monthly: the period ends on the month's last day; due on a day of the next month
        ("ods_gov_tax_monthly", dt.date(2024, 11, 30), "2024-12-20T18:00:00+08:00"),
        ("ods_gov_tax_monthly", dt.date(2024, 2, 29), "2024-03-20T18:00:00+08:00"),
        ("ods_gov_social_insurance", dt.date(2024, 12, 31), "2025-01-25T18:00:00+08:00"),
    ],
)
def test_a_feed_period_is_due_by_its_deadline(table: str, period_end: dt.date, due: str) -> None:
    """The scorecard model's deadline: 00:00 UTC of the period's last day + `seconds`."""
    feed = shipped()[table].feed
    assert feed is not None
    midnight_utc = dt.datetime(period_end.year, period_end.month, period_end.day, tzinfo=dt.UTC)
    assert midnight_utc + dt.timedelta(seconds=feed.deadline.seconds) == dt.datetime.fromisoformat(
        due
    )


@pytest.mark.parametrize(
    ("feed", "days", "time", "period"),
    [
        ("{name: f, channel: landing, key: [k]}", 1, "09:00", "day"),
        ('{name: f, channel: landing, key: [k], schedule: "@hourly"}', 1, "09:00", "day"),
        ('{name: f, channel: exchange, key: [k], schedule: "@monthly"}', 15, "18:00", "month"),
    ],
)
def test_a_feed_without_deadline_gets_the_default_rule_of_its_schedule(
    tmp_path: Path, feed: str, days: int, time: str, period: str
) -> None:
    text = ODS_FEED.replace("{name: f, channel: landing, key: [k]}", feed)
    contract = load_contract(write(tmp_path, "ods", "ods_f", text))
    assert contract.feed is not None
    assert (contract.feed.deadline.days, contract.feed.deadline.time) == (days, time)
    assert contract.feed.deadline.utc_offset == "+08:00"
    assert contract.feed.period == period


def test_the_data_dictionary_says_each_deadline_in_words() -> None:
    feeds = {n: c.feed for n, c in shipped().items() if c.feed is not None}
    tax, txn = feeds["ods_gov_tax_monthly"], feeds["ods_pay_transactions"]
    assert tax.deadline.describe(tax.period) == "次月20日 (day 20 of the next month) 18:00 (+08:00)"
    assert txn.deadline.describe(txn.period) == "T+1 06:00 (+08:00)"


def test_a_deadline_in_another_offset_is_the_same_instant(tmp_path: Path) -> None:
    text = ODS_FEED.replace(
        "key: [k]}", 'key: [k], deadline: {days: 2, time: "01:30", utc_offset: "-05:00"}}'
    )
    feed = load_contract(write(tmp_path, "ods", "ods_f", text)).feed
    assert feed is not None
    assert feed.deadline.seconds == 2 * 86400 + 6 * 3600 + 30 * 60


# --- bad contracts --------------------------------------------------------------------------

ADS = """\
name: ads_x
layer: ads
domain: payment
owner_department: 市商务局
description:
  zh: 测试表
  en: Test table
retention_days: 30
primary_key: [a]
columns:
  - name: a
    type: string
    nullable: false
    description: {zh: 甲, en: A}
"""

ODS_FEED = """\
name: ods_f
layer: ods
domain: payment
owner_department: 市商务局
description: {zh: 贴源表, en: Raw feed}
retention_days: 30
feed: {name: f, channel: landing, key: [k]}
columns:
  - {name: k, type: string, description: {zh: 键, en: Key}}
  - {name: v, type: string, description: {zh: 值, en: Value}}
"""

DWD = """\
name: dwd_f
layer: dwd
domain: payment
owner_department: 市商务局
description: {zh: 明细表, en: Detail}
retention_days: 30
upstream: [ods_f]
columns:
  - {name: k, type: string, source: k, rule: key, description: {zh: 键, en: Key}}
  - {name: v, type: string, source: v, rule: text, description: {zh: 值, en: Value}}
"""


def write(root: Path, layer: str, name: str, text: str) -> Path:
    path = root / layer / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_fixture_contracts_are_valid(tmp_path: Path) -> None:
    write(tmp_path, "ads", "ads_x", ADS)
    write(tmp_path, "ods", "ods_f", ODS_FEED)
    write(tmp_path, "dwd", "dwd_f", DWD)
    contracts = load_contracts(tmp_path)
    assert sorted(contracts) == ["ads_x", "dwd_f", "ods_f"]
    assert [c.name for c in contracts["dwd_f"].columns] == ["k", "v", *DWD_LINEAGE]
    assert [c.name for c in contracts["ods_f"].columns] == ["k", "v", *ODS_LINEAGE]


# (id, layer folder, file name, contract text, substrings the message must hold besides the path)
BAD_CONTRACTS = [
    (
        "unknown-column-type",
        "ads",
        "ads_x",
        ADS.replace("type: string", "type: varchar2"),
        ["field columns.0.type", "varchar2"],
    ),
    (
        "primary-key-unknown-column",
        "ads",
        "ads_x",
        ADS.replace("primary_key: [a]", "primary_key: [zz]"),
        ["primary_key", "zz"],
    ),
    (
        "partition-by-unknown-column",
        "ads",
        "ads_x",
        ADS.replace("primary_key: [a]", "partition_by: [biz_day]"),
        ["partition_by", "biz_day"],
    ),
    (
        "missing-owner-department",
        "ads",
        "ads_x",
        ADS.replace("owner_department: 市商务局\n", ""),
        ["field owner_department", "required"],
    ),
    (
        "wrong-layer-prefix",
        "ads",
        "dws_x",
        ADS.replace("name: ads_x", "name: dws_x"),
        ["name must start with the layer prefix 'ads_'"],
    ),
    (
        "name-differs-from-file",
        "ads",
        "ads_y",
        ADS,
        ["field name", "'ads_x'", "file name"],
    ),
    (
        "file-in-wrong-layer-folder",
        "dws",
        "ads_x",
        ADS,
        ["field layer", "'ads'", "'dws'"],
    ),
    (
        "unknown-key-typo",
        "ads",
        "ads_x",
        ADS.replace("nullable: false", "nulable: false"),
        ["field columns.0.nulable", "Extra inputs are not permitted"],
    ),
    (
        "unknown-top-level-key",
        "ads",
        "ads_x",
        ADS.replace("retention_days: 30", "retention_days: 30\nretension: 7"),
        ["field retension", "Extra inputs are not permitted"],
    ),
    (
        "enum-rule-without-values",
        "dwd",
        "dwd_f",
        DWD.replace("rule: text", "rule: enum"),
        ["field columns.1", "rule `enum` needs `values`"],
    ),
    (
        "source-without-rule",
        "dwd",
        "dwd_f",
        DWD.replace(", rule: text", ""),
        ["field columns.1", "`source` and `rule` go together"],
    ),
    (
        "unknown-rule",
        "dwd",
        "dwd_f",
        DWD.replace("rule: text", "rule: texts"),
        ["field columns.1.rule"],
    ),
    (
        "rule-outside-dwd",
        "ads",
        "ads_x",
        ADS.replace("nullable: false", "nullable: false\n    source: a\n    rule: text"),
        ["rules (`rule`) belong to DWD"],
    ),
    (
        "feed-outside-ods",
        "ads",
        "ads_x",
        ADS.replace(
            "retention_days: 30", "retention_days: 30\nfeed: {name: f, channel: landing, key: [a]}"
        ),
        ["only ODS contracts declare a feed"],
    ),
    (
        "feed-key-unknown-column",
        "ods",
        "ods_f",
        ODS_FEED.replace("key: [k]", "key: [kk]"),
        ["feed.key", "kk"],
    ),
    (
        "deadline-time-not-hh-mm",
        "ods",
        "ods_f",
        ODS_FEED.replace("key: [k]}", 'key: [k], deadline: {days: 1, time: "9:00"}}'),
        ["field feed.deadline.time"],
    ),
    (
        "deadline-before-the-period-ends",
        "ods",
        "ods_f",
        ODS_FEED.replace("key: [k]}", 'key: [k], deadline: {days: 0, time: "23:00"}}'),
        ["field feed.deadline.days", "greater than or equal to 1"],
    ),
    (
        "deadline-offset-not-an-offset",
        "ods",
        "ods_f",
        ODS_FEED.replace(
            "key: [k]}", 'key: [k], deadline: {days: 1, time: "09:00", utc_offset: CST}}'
        ),
        ["field feed.deadline.utc_offset"],
    ),
    (
        "deadline-unknown-key",
        "ods",
        "ods_f",
        ODS_FEED.replace("key: [k]}", 'key: [k], deadline: {day: 1, time: "09:00"}}'),
        ["field feed.deadline.day", "Extra inputs are not permitted"],
    ),
    (
        "unknown-schedule",
        "ods",
        "ods_f",
        ODS_FEED.replace("key: [k]}", 'key: [k], schedule: "@weekly"}'),
        ["field feed.schedule", "@monthly"],
    ),
    (
        "missing-zh-description",
        "ads",
        "ads_x",
        ADS.replace("{zh: 甲, en: A}", "{en: A}"),
        ["field columns.0.description.zh", "required"],
    ),
    (
        "bad-retention",
        "ads",
        "ads_x",
        ADS.replace("retention_days: 30", "retention_days: 0"),
        ["field retention_days"],
    ),
    (
        "bad-column-name",
        "ads",
        "ads_x",
        ADS.replace("name: a\n", "name: Amount Fen\n"),
        ["field columns.0.name"],
    ),
    (
        "month-column-not-a-date",
        "ads",
        "ads_x",
        ADS.replace("primary_key: [a]", "primary_key: [a]\nmonth_column: a"),
        ["month_column 'a' is not a date column"],
    ),
    (
        "month-column-of-a-partitioned-table",
        "ads",
        "ads_x",
        ADS.replace("primary_key: [a]", "primary_key: [a]\nmonth_column: a\npartition_by: [a]"),
        ["month_column is for an unpartitioned DWS/ADS table"],
    ),
    (
        "invalid-yaml",
        "ads",
        "ads_x",
        ADS.replace("primary_key: [a]", "primary_key: [a"),
        ["not valid YAML", "line"],
    ),
    (
        "flow-mapping-broken-by-unquoted-comma",
        "ads",
        "ads_x",
        ADS.replace("{zh: 甲, en: A}", "{zh: a, b, en: c}"),
        ["field columns.0.description.b", "Extra inputs are not permitted"],
    ),
    (
        "not-a-mapping",
        "ads",
        "ads_x",
        "- just\n- a list\n",
        ["expected a mapping"],
    ),
    (
        "empty-file",
        "ads",
        "ads_x",
        "",
        ["expected a mapping"],
    ),
]


@pytest.mark.parametrize(
    ("layer", "name", "text", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CONTRACTS],
)
def test_a_bad_contract_names_its_file_and_field(
    tmp_path: Path, layer: str, name: str, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, layer, name, text)
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    message = str(caught.value)
    assert str(path) in message
    assert message.startswith(f"invalid table contract {path}")
    # the test's tmp_path holds the case id: look for the field outside the path
    rest = message.replace(str(path), "")
    for part in expected:
        assert part in rest, f"{part!r} not in {message!r}"


@pytest.mark.parametrize(
    ("files", "bad", "expected"),
    [
        pytest.param(
            {("ads", "ads_x"): ADS.replace("primary_key", "upstream: [dws_missing]\nprimary_key")},
            ("ads", "ads_x"),
            ["field upstream", "dws_missing"],
            id="upstream-names-unknown-table",
        ),
        pytest.param(
            {
                ("ods", "ods_f"): ODS_FEED,
                ("dwd", "dwd_f"): DWD.replace("source: v,", "source: value,"),
            },
            ("dwd", "dwd_f"),
            ["field columns.1.source", "ods_f", "'value'"],
            id="dwd-source-missing-from-ods-feed",
        ),
        pytest.param(
            {
                ("ods", "ods_f"): ODS_FEED,
                ("dwd", "dwd_f"): DWD.replace("source: k,", "source: _delivery_id,"),
            },
            ("dwd", "dwd_f"),
            ["field columns.0.source", "'_delivery_id'"],
            id="dwd-source-is-a-lineage-column",
        ),
        pytest.param(
            {
                ("ads", "ads_x"): ADS,
                ("dwd", "dwd_f"): DWD.replace("[ods_f]", "[ads_x]"),
            },
            ("dwd", "dwd_f"),
            ["field upstream", "ODS table of the feed"],
            id="dwd-first-upstream-is-not-an-ods-feed",
        ),
        pytest.param(
            {("dwd", "dwd_f"): DWD.replace("upstream: [ods_f]\n", "")},
            ("dwd", "dwd_f"),
            ["field upstream", "ODS table of the feed"],
            id="dwd-rules-without-upstream",
        ),
    ],
)
def test_cross_contract_references_are_checked(
    tmp_path: Path,
    files: dict[tuple[str, str], str],
    bad: tuple[str, str],
    expected: list[str],
) -> None:
    for (layer, name), text in files.items():
        write(tmp_path, layer, name, text)
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path)
    message = str(caught.value)
    path = tmp_path / bad[0] / f"{bad[1]}.yaml"
    assert str(path) in message
    rest = message.replace(str(path), "")
    for part in expected:
        assert part in rest, f"{part!r} not in {message!r}"


def test_an_invalid_regex_pattern_is_a_contract_error(tmp_path: Path) -> None:
    path = write(tmp_path, "ads", "ads_x", ADS.replace("nullable: false", "pattern: '[0-9'"))
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert str(path) in str(caught.value)
    assert "columns.0.pattern" in str(caught.value)


def test_a_non_utf8_contract_is_a_contract_error(tmp_path: Path) -> None:
    path = tmp_path / "ads" / "ads_x.yaml"
    path.parent.mkdir()
    path.write_bytes(ADS.encode("gbk"))
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("bad_type", ["decimal(40,2)", "decimal(5,9)"])
def test_an_impossible_decimal_is_rejected(tmp_path: Path, bad_type: str) -> None:
    path = write(tmp_path, "ads", "ads_x", ADS.replace("type: string", f"type: '{bad_type}'"))
    with pytest.raises(ContractError, match=r"columns\.0\.type"):
        load_contract(path)


def test_types_are_normalised(tmp_path: Path) -> None:
    path = write(tmp_path, "ads", "ads_x", ADS.replace("type: string", "type: 'Decimal(18, 2)'"))
    assert load_contract(path).columns[0].type == "decimal(18,2)"
    assert "`a` DECIMAL(18,2) NOT NULL" in load_contract(path).create_table_ddl("/tmp/x")


# --- `citylake contracts check` -------------------------------------------------------------


def test_cli_contracts_check_rejects_a_bad_folder(tmp_path: Path) -> None:
    write(tmp_path, "ads", "ads_good", ADS.replace("ads_x", "ads_good"))
    write(tmp_path, "ads", "ads_bad", ADS.replace("ads_x", "ads_bad").replace("string", "text"))
    result = CliRunner().invoke(app, ["contracts", "check", str(tmp_path)])
    assert result.exit_code == 1, result.output
    flat = result.output.replace("\n", "")
    assert "ads_bad.yaml" in flat
    assert "columns.0.type" in flat


def test_cli_contracts_check_accepts_the_shipped_folder() -> None:
    result = CliRunner().invoke(app, ["contracts", "check", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert f"{len(SHIPPED_NAMES)} contracts valid" in result.output
