"""The fuel domain on Spark + Delta: ODS → DWD → dws_fuel_station_product_daily →
ads_fuel_inventory_check.

A hand-made day (expectations computed by hand in the comments) shows the indicator's arithmetic,
its edge cases, deduplication and quarantine; a generated city-day shows that the indicator
reproduces the generator's FuelBalance truth and flags exactly the planted stations.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from pyspark.sql import DataFrame, SparkSession
from stdnum.cn import uscc

from citylake.settings import Settings
from pipelines import tables
from pipelines.build import BuildResult, build_fuel_dwd, build_fuel_layers, pin_inputs
from pipelines.dwd.fuel import FUEL_FEEDS, FUEL_TABLES
from pipelines.generator import generate_city, write_day
from pipelines.generator.dirt import REJECTED_KINDS
from pipelines.ingest import ingest_files

pytestmark = pytest.mark.spark

D0, D1 = dt.date(2024, 11, 4), dt.date(2024, 11, 5)
GAUGE_NOISE_L = Decimal("0.25")  # per reading (pipelines/generator/fuel.py)


def _read(spark: SparkSession, name: str, settings: Settings) -> DataFrame:
    return tables.read(spark, tables.contract(name, settings), settings=settings)


# --- a hand-made day ------------------------------------------------------------------------


def _uscc(base17: str) -> str:
    return base17 + uscc.calc_check_digit(base17)


SINOPEC, PETROCHINA, PRIVATE = (
    _uscc("91431100MA4L0A0X4"),
    _uscc("91431102MA4L1B2C3"),
    _uscc("91431103MA4L2C3D4"),
)
SUPPLIER = _uscc("91431100MA4L7K8P2")
FULLWIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


def _t(day: dt.date, clock: str) -> str:
    return f"{day.isoformat()}T{clock}+08:00"


# Each feed: deliveries of (delivery id, ingestion time, rows in contract column order).
STATIONS = [
    ("st1", "2024-11-05 18:00:00", [
        ["ST001", SINOPEC, "中国石化永州零陵加油站", "431102", "sinopec", "26.2", "111.6",
         "2024-01-01T09:00:00+08:00"],
        # ST001 moves district on D1: a second version (SCD2).
        ["ST001", SINOPEC, "中国石化永州零陵加油站", "431103", "sinopec", "26.2", "111.6",
         _t(D1, "12:00:00")],
        ["ST002", PRIVATE, "永州冷水滩加油站", "431103", "private", "26.4", "111.6",
         "2024-01-01T09:00:00+08:00"],
        # Producer quirks, normalized: full-width USCC, brand in mixed case.
        ["ST003", PETROCHINA.translate(FULLWIDTH), "中国石油永州祁阳加油站", "431181",
         "PetroChina", "26.58", "111.85", "2024-01-01T09:00:00+08:00"],
        ["ST004", PRIVATE, "永州道县加油站", "431124", "private", "25.5", "111.6",
         "2024-01-01T09:00:00+08:00"],
        ["ST005", SINOPEC, "中国石化永州宁远加油站", "431126", "sinopec", "25.6", "111.9",
         "2024-01-01T09:00:00+08:00"],
        # 30.5°N is far outside 永州市: quarantined, so ST006's sales are of an unknown station.
        ["ST006", PRIVATE, "永州江华加油站", "431129", "private", "30.5", "111.9",
         "2024-01-01T09:00:00+08:00"],
    ]),
]  # fmt: skip
SALES = [
    ("s1", "2024-11-05 23:00:00", [
        # ST001 92: sold 1,200 + 800 = 2,000 L; an amount as `¥8,940.00` is normalized.
        ["S101", "ST001", "N1", "92", "1200.000", "7.45", "¥8,940.00", _t(D1, "08:00:00")],
        ["S102", "ST001", "N2", "92", "800.000", "7.45", "5960.00", _t(D1, "18:00:00")],
        # ST002 95: sold 600 + 400 = 1,000 L (S202 arrives again in s2: counted once).
        ["S201", "ST002", "N1", "95", "600.000", "7.96", "4776.00", _t(D1, "09:00:00")],
        ["S202", "ST002", "N1", "95", "400.000", "7.96", "3184.00", _t(D1, "19:00:00")],
        ["S203", "ST002", "N1", "93", "50.000", "7.45", "372.50", _t(D1, "10:00:00")],
        ["S204", "ST002", "N1", "95", "-20.000", "7.96", "-159.20", _t(D1, "11:00:00")],
        # ST003 0D: 16:30 UTC on D0 is 00:30 on D1 in +08:00, so it is D1's (full-width
        # station id, lower-case product); S302's amount is 2.00 yuan off 400 × 7.12 = 2,848.00
        # and it is kept: sold 600 + 400 = 1,000 L.
        ["S301", " ＳＴ００３ ", "N1", "0d", "600.000", "7.12", "4272.00", "2024-11-04T16:30:00Z"],
        ["S302", "ST003", "N2", "0D", "400.000", "7.12", "2850.00", _t(D1, "20:00:00")],
        ["S401", "ST004", "N1", "92", "100.000", "7.45", "745.00", _t(D1, "12:00:00")],
        ["S601", "ST006", "N1", "92", "10.000", "7.45", "74.50", _t(D1, "12:00:00")],
    ]),
    ("s2", "2024-11-06 01:00:00", [
        ["S202", "ST002", "N1", "95", "400.000", "7.96", "3184.00", _t(D1, "19:00:00")],
    ]),
]  # fmt: skip
DELIVERIES = [
    ("d1", "2024-11-05 23:00:00", [
        ["DL1", "ST001", "92", "5000.000", SUPPLIER, _t(D1, "09:00:00")],
        ["DL3", "ST003", "0D", "2000.000", SUPPLIER, _t(D1, "10:00:00")],
        ["DL4", "ST001", "92", "-100.000", SUPPLIER, _t(D1, "11:00:00")],
        ["DL9", "ST404", "95", "1000.000", SUPPLIER, _t(D1, "11:00:00")],
    ]),
]  # fmt: skip
READINGS = [
    ("r1", "2024-11-05 23:59:59", [
        # ST001 92 has two tanks. Opening: T1's last D0 reading 10,000.0 + T2's 8,000.0
        # = 18,000 L (T1's 12:00 reading is not its last). Closing: 14,000.1 + 6,999.8
        # = 20,999.9 L.
        ["ST001", "T1", "92", "9000.0", _t(D0, "12:00:00")],
        ["ST001", "T1", "92", "10000.0", _t(D0, "23:59:59")],
        ["ST001", "T2", "92", "8000.0", _t(D0, "23:59:59")],
        ["ST001", "T1", "92", "12500.0", _t(D1, "12:00:00")],
        ["ST001", "T1", "92", "14000.1", _t(D1, "23:59:59")],
        ["ST001", "T2", "92", "6999.8", _t(D1, "23:59:59")],
        ["ST001", "T9", "92", "-1.0", _t(D1, "23:59:59")],
        ["ST002", "T1", "95", "5000.0", _t(D0, "23:59:59")],
        ["ST002", "T1", "95", "3990.0", _t(D1, "23:59:59")],
        ["ST003", "T1", "0D", "8000.0", _t(D0, "23:59:59")],
        ["ST003", "T1", "0D", "8991.0", _t(D1, "23:59:59")],
        ["ST004", "T1", "92", "3000.0", _t(D1, "23:59:59")],  # no reading on D0
        ["ST005", "T1", "98", "1000.0", _t(D0, "23:59:59")],
        ["ST005", "T1", "98", "1000.0", _t(D1, "23:59:59")],
        ["ST404", "T1", "92", "500.0", _t(D1, "23:59:59")],
    ]),
]  # fmt: skip


def _ods_frame(
    spark: SparkSession, name: str, deliveries: list[tuple[str, str, list[list[str]]]]
) -> DataFrame:
    columns = [c.name for c in tables.contract(name).feed_columns]
    rows = [
        (delivery, f"{delivery}.csv", line, dt.datetime.fromisoformat(at), *row)
        for delivery, at, lines in deliveries
        for line, row in enumerate(lines, start=2)
    ]
    schema = "_delivery_id string, _source_file string, _source_line bigint, _ingested_at "
    schema += "timestamp, " + ", ".join(f"{c} string" for c in columns)
    return spark.createDataFrame(rows, schema).withColumn("_business_date", F.lit(D1))


@pytest.fixture(scope="module")
def hand_day(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The hand-made day built through every fuel layer; what the tests read, collected once."""
    var = tmp_path_factory.mktemp("fuel-lake")
    settings = Settings(var_dir=var, warehouse=str(var / "lakehouse"), landing=str(var / "in"))
    ods = {
        "ods_fuel_stations": _ods_frame(spark, "ods_fuel_stations", STATIONS),
        "ods_fuel_sales": _ods_frame(spark, "ods_fuel_sales", SALES),
        "ods_fuel_deliveries": _ods_frame(spark, "ods_fuel_deliveries", DELIVERIES),
        "ods_fuel_tank_readings": _ods_frame(spark, "ods_fuel_tank_readings", READINGS),
    }
    # The frames stand in for ODS tables at version 0 (nothing to time-travel here); no gates,
    # so the planted broken rows go through every layer to the quarantine.
    versions = BuildResult(D1, D1, dict.fromkeys(FUEL_TABLES, 0))
    build_fuel_layers(ods, D1, D1, versions, settings, gates=False)
    # D0's readings came with D1's deliveries, so D0 is restated too; the tests read D1.
    yield {
        "ads": {
            (r.station_id, r.product_code): r.asDict()
            for r in _read(spark, "ads_fuel_inventory_check", settings)
            .where(F.col("biz_date") == D1)
            .collect()
        },
        "dws": {
            (r.station_id, r.product_code): r.asDict()
            for r in _read(spark, "dws_fuel_station_product_daily", settings)
            .where(F.col("biz_date") == D1)
            .collect()
        },
        "built_days": sorted(
            {r.biz_date for r in _read(spark, "ads_fuel_inventory_check", settings).collect()}
        ),
        "sales": {r.sale_id: r.asDict() for r in _read(spark, "dwd_fuel_sale", settings).collect()},
        "stations": sorted(
            (r.station_id, r.district_code, r.is_current, r.brand, r.uscc)
            for r in _read(spark, "dwd_fuel_station", settings).collect()
        ),
        "quarantine": sorted(
            (r.feed, r.reason_code, r.column_name, r.bad_value, r.source_line)
            for r in _read(spark, "dwd_quarantine", settings).collect()
        ),
    }


def test_planted_one_percent_gap_is_flagged_and_point_three_percent_is_not(
    hand_day: dict,
) -> None:
    ads = hand_day["ads"]
    # ST002 95: 5,000 + 0 − 1,000 − 3,990 = 10 L; 10 ÷ (1,000 + 0) = 1 % > 0.5 %: flagged.
    st2 = ads[("ST002", "95")]
    assert (st2["opening_liters"], st2["delivered_liters"], st2["sold_liters"]) == (
        Decimal("5000.000"),
        Decimal("0.000"),
        Decimal("1000.000"),
    )
    assert (st2["closing_liters"], st2["gap_liters"]) == (Decimal("3990.000"), Decimal("10.000"))
    assert st2["gap_rate"] == pytest.approx(0.01) and st2["flag"] is True
    # ST003 0D: 8,000 + 2,000 − 1,000 − 8,991 = 9 L; 9 ÷ (1,000 + 2,000) = 0.3 %: not flagged.
    # (Had S302 been dropped for its amount, 409 L of 2,600 would have flagged it.)
    st3 = ads[("ST003", "0D")]
    assert (st3["sold_liters"], st3["delivered_liters"], st3["gap_liters"]) == (
        Decimal("1000.000"),
        Decimal("2000.000"),
        Decimal("9.000"),
    )
    assert st3["gap_rate"] == pytest.approx(0.003) and st3["flag"] is False


def test_two_tanks_of_one_product_are_summed_and_an_honest_station_balances(
    hand_day: dict,
) -> None:
    st1 = hand_day["ads"][("ST001", "92")]
    # Opening 10,000.0 + 8,000.0; closing 14,000.1 + 6,999.8; delivered 5,000 (DL4's −100 L is
    # quarantined); sold 1,200 + 800. Gap: 18,000 + 5,000 − 2,000 − 20,999.9 = 0.1 L.
    assert (st1["opening_liters"], st1["closing_liters"]) == (
        Decimal("18000.000"),
        Decimal("20999.900"),
    )
    assert (st1["delivered_liters"], st1["sold_liters"]) == (
        Decimal("5000.000"),
        Decimal("2000.000"),
    )
    assert st1["gap_liters"] == Decimal("0.100")
    assert st1["gap_rate"] == pytest.approx(0.1 / 7000)
    # Gauge noise: ±0.25 L per reading, two tanks read at opening and at closing.
    noise = 4 * GAUGE_NOISE_L
    assert abs(st1["gap_liters"]) <= noise and not st1["flag"]
    dws = hand_day["dws"][("ST001", "92")]
    assert (dws["opening_tanks"], dws["closing_tanks"], dws["gauge_complete"]) == (2, 2, True)


def test_unknown_opening_and_nothing_moved_are_not_flagged(hand_day: dict) -> None:
    ads = hand_day["ads"]
    # ST004 has no reading on D0: the opening is unknown, so are the gap and its rate.
    st4 = ads[("ST004", "92")]
    assert st4["opening_liters"] is None and st4["closing_liters"] == Decimal("3000.000")
    assert (st4["gap_liters"], st4["gap_rate"], st4["flag"]) == (None, None, False)
    assert hand_day["dws"][("ST004", "92")]["gauge_complete"] is False
    # ST005 98 sold and received nothing: gap 1,000 − 1,000 = 0, rate undefined (no ÷ 0).
    st5 = ads[("ST005", "98")]
    assert (st5["gap_liters"], st5["gap_rate"], st5["flag"]) == (Decimal("0.000"), None, False)
    # Exactly the known stations' products of D1; every row stamped for reproduction.
    assert sorted(ads) == [
        ("ST001", "92"),
        ("ST002", "95"),
        ("ST003", "0D"),
        ("ST004", "92"),
        ("ST005", "98"),
    ]
    for row in ads.values():
        assert row["biz_date"] == D1 and row["_computed_at"] is not None
        assert set(json.loads(row["_input_versions"])) == set(FUEL_TABLES)


def test_a_re_delivered_sale_counts_once_and_the_latest_line_wins(hand_day: dict) -> None:
    sales = hand_day["sales"]
    assert sales["S202"]["_delivery_id"] == "s2"  # ingested later than s1
    assert hand_day["ads"][("ST002", "95")]["sold_liters"] == Decimal("1000.000")
    assert sorted(sales) == ["S101", "S102", "S201", "S202", "S301", "S302", "S401"]
    # Normalized on the way: +08:00 date of 16:30 UTC, full-width id, lower-case grade, ¥ text.
    assert (sales["S301"]["biz_date"], sales["S301"]["station_id"]) == (D1, "ST003")
    assert sales["S301"]["product_code"] == "0D"
    assert sales["S101"]["amount_yuan"] == Decimal("8940.00")
    # Kept and marked: 2,850.00 ≠ 400 × 7.12 = 2,848.00.
    assert [s for s, r in sales.items() if r["amount_mismatch"]] == ["S302"]


def test_broken_rows_and_unknown_stations_are_quarantined_with_reasons(hand_day: dict) -> None:
    assert hand_day["quarantine"] == sorted(
        [
            ("fuel_stations", "out_of_range", "lat", "30.5", 8),
            ("fuel_sales", "bad_value", "product_code", "93", 6),
            ("fuel_sales", "out_of_range", "liters", "-20.000", 7),
            ("fuel_sales", "unknown_station", "station_id", "ST006", 11),
            ("fuel_deliveries", "out_of_range", "liters", "-100.000", 4),
            ("fuel_deliveries", "unknown_station", "station_id", "ST404", 5),
            ("fuel_tank_readings", "out_of_range", "volume_liters", "-1.0", 8),
            ("fuel_tank_readings", "unknown_station", "station_id", "ST404", 16),
        ]
    )


def test_the_day_before_that_late_readings_touched_is_restated_too(hand_day: dict) -> None:
    # D0's readings arrived with D1's deliveries: D0's balance is rebuilt (opening unknown).
    assert hand_day["built_days"] == [D0, D1]


def test_station_dimension_keeps_history(hand_day: dict) -> None:
    assert hand_day["stations"] == [
        ("ST001", "431102", False, "sinopec", SINOPEC),
        ("ST001", "431103", True, "sinopec", SINOPEC),
        ("ST002", "431103", True, "private", PRIVATE),
        ("ST003", "431181", True, "petrochina", PETROCHINA),
        ("ST004", "431124", True, "private", PRIVATE),
        ("ST005", "431126", True, "sinopec", SINOPEC),
    ]


# --- a generated city ------------------------------------------------------------------------


def test_generated_city_reproduces_the_fuel_truth(spark: SparkSession, lake: Settings) -> None:
    """Two generated days (dirty rows included) through ingest and every fuel layer: the
    indicator equals the generator's FuelBalance per station, product and day, and flags
    exactly the planted stations whose rate is above 0.5 %."""
    start, days = dt.date(2024, 11, 28), 2
    run = generate_city(start, days, scale=0.01)
    truth, rejected = [], dict.fromkeys(FUEL_FEEDS, 0)
    for city_day in run:
        write_day(Path(lake.landing), city_day, FUEL_FEEDS)
        truth += city_day.fuel
        for feed in rejected:
            rejected[feed] += sum(city_day.truth[feed][k] for k in REJECTED_KINDS)
    planted = run.world.dishonest
    assert {0.01, 0.003} <= set(planted.values())
    for feed in FUEL_FEEDS:
        ingest_files(feed, [Path(lake.landing) / feed], settings=lake)
    ods = {name: _read(spark, name, lake) for name in FUEL_TABLES}
    versions = {name: tables.version(spark, tables.contract(name, lake), lake) for name in ods}
    end = start + dt.timedelta(days=days - 1)
    build_fuel_layers(ods, start, end, BuildResult(start, end, versions), lake, gates=False)

    rows = _read(spark, "ads_fuel_inventory_check", lake).collect()
    # The day before carries only the opening readings that came with the first delivery:
    # restated with them, but with no opening of its own nothing there can be flagged.
    assert {r.biz_date for r in rows} == {start - dt.timedelta(days=1), start, end}
    assert not any(r.flag for r in rows if r.biz_date < start)
    ads = {(r.biz_date, r.station_id, r.product_code): r for r in rows if r.biz_date >= start}
    assert sorted(ads) == sorted((b.day, b.station_id, b.product) for b in truth)
    for b in truth:
        row = ads[(b.day, b.station_id, b.product)]
        got = [row.opening_liters, row.delivered_liters, row.sold_liters, row.closing_liters]
        want = [b.opening_ml, b.delivered_ml, b.sold_ml, b.closing_ml]
        assert got == [Decimal(ml) / 1000 for ml in want], b
        assert row.gap_liters == Decimal(b.gap_ml) / 1000, b
        if b.sold_ml + b.delivered_ml:
            assert row.gap_rate == pytest.approx(b.gap_rate, rel=1e-12, abs=1e-15), b
        assert row.flag == (b.gap_rate > 0.005), b
        assert row.flag == (planted.get(b.station_id, 0) > 0.005), b  # exactly as planted
    # Every quarantined row is a planted rejected one (extra copies: nothing real was lost).
    counts = (
        _read(spark, "dwd_quarantine", lake)
        .where(F.col("feed").isin(*rejected))
        .groupBy("feed")
        .count()
        .collect()
    )
    assert {r["feed"]: r["count"] for r in counts} == {f: n for f, n in rejected.items() if n}


def test_a_station_that_changes_leaves_its_earlier_days_alone(
    spark: SparkSession, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every station re-surveyed on the second day: its new version makes no fuel fact of the
    first day different (a fact asks only whether its station is known), so the second day's
    build leaves the first day's sales files as they are; built day by day, the fuel DWD equals
    one build of both days."""
    monkeypatch.setattr("pipelines.generator.fuel.STATION_CHANGE_RATE", 1.0)
    start = dt.date(2024, 11, 28)
    sales = tables.contract("dwd_fuel_sale", lake)
    for day, city_day in enumerate(generate_city(start, 2, scale=0.01)):
        for feed, path in write_day(Path(lake.landing), city_day, FUEL_FEEDS).items():
            ingest_files(feed, [path], settings=lake)
        on = start + dt.timedelta(days=day)
        touched = build_fuel_dwd(on, on, BuildResult(on, on, pin_inputs(spark, lake)), lake)
        files = tables.ensure_native(sales, lake).file_uris()
        if day == 0:
            first_day = sorted(f for f in files if f"biz_date={start}/" in f)
        else:  # not restated, and its files are the very same; the second day's are there
            assert touched and start not in touched
            assert sorted(f for f in files if f"biz_date={start}/" in f) == first_day
            assert any(f"biz_date={on}/" in f for f in files)
    changed = _read(spark, "dwd_fuel_station", lake).where(~F.col("is_current")).count()
    assert changed == _read(spark, "dwd_fuel_station", lake).where(F.col("is_current")).count()

    def state() -> dict[str, list]:
        names = [*FUEL_TABLES.values(), "dwd_quarantine"]
        return {
            n: sorted(map(str, _read(spark, n, lake).drop("quarantined_at").collect()))
            for n in names
        }

    day_by_day = state()
    build_fuel_dwd(None, None, BuildResult(None, None, pin_inputs(spark, lake)), lake)
    assert state() == day_by_day
