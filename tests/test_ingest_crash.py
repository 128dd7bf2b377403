"""Crash ingestion with SIGKILL at random moments across all three channels, then converge.

A real PostgreSQL (pay_* feeds), the exchange stand-in (gov_* feeds) and a landing zone (the
other feeds) are fed from the city generator; the sources keep moving between rounds (new
days, late updates, refunds, reversals, new gov versions, re-sent files). Each round runs
`tests.crash_child` as its own process and SIGKILLs it after a random delay (seeded: the delays
and the phase each kill hit are printed, set CITYLAKE_CRASH_SEED to replay another run). After
each kill the invariants that hold at any moment are checked; after the last, one run to
completion must converge: every delivery reconciles, nothing is loaded twice, every source row
version is in ODS, every watermark sits at its source's newest version.

The last two tests pin down two faults found on the way: a delivery committed by two workers at
once (a file and its re-sent copy), and a kill between removing a staged batch's two files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from citylake import stack
from citylake.postgres import connect_source_db
from citylake.settings import PROJECT_ROOT, Settings, get_settings
from pipelines import tables
from pipelines.channels import database, staging
from pipelines.generator import CityDay, generate_city, write_day
from pipelines.ingest import delivery_id, ingest_files
from sources import payment_db
from sources.gov_exchange import publish, read_page
from tests.payment_files import registry
from tests.source_db import alive, free_port, server_pids

SEED = int(os.environ.get("CITYLAKE_CRASH_SEED", "20241105"))
ROUNDS = 20
START = dt.date(2024, 11, 5)
SCALE = 0.02
NEW_DAY_BEFORE = {1: 0, 6: 1, 11: 2, 16: 3}  # round -> index of the city-day it brings
DB_FEEDS = ("pay_transactions", "pay_settlements")
EXCHANGE_FEEDS = ("gov_enterprise_registry", "gov_tax_monthly", "gov_social_insurance")
CHURN_COLUMN = {  # the value a late correction changes
    "gov_enterprise_registry": "reg_capital_wan",
    "gov_tax_monthly": "vat_yuan",
    "gov_social_insurance": "insured_headcount",
}
FINAL_TIMEOUT = 300.0


@dataclass
class Sources:
    """What the test put into the sources, to prove completeness against."""

    published: dict[str, list[str]] = field(
        default_factory=lambda: {f: [] for f in EXCHANGE_FEEDS}
    )  # feed -> exchange updated_at of every version, in publication order
    landing: list[tuple[str, Path]] = field(default_factory=list)  # (feed, file) as delivered
    db_rejected: int = 0  # rows the typed database could not hold (never reach the platform)
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(10**12))


# ---------------------------------------------------------------- environment


@pytest.fixture
def crash_stack(spark, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """PostgreSQL + the exchange on free ports, var/warehouse/landing in a fresh directory the
    `postgres` account can traverse, every ODS table created (so the children need no JVM);
    the services are stopped by pid afterwards and none of their processes may be left."""
    root = Path(tempfile.mkdtemp(prefix="citylake-crash-"))
    root.chmod(0o711)  # not tmp_path: PostgreSQL runs as `postgres` when we are root
    pg_port = free_port()
    ex_port = free_port()
    while ex_port == pg_port:
        ex_port = free_port()
    env = {
        "CITYLAKE_VAR_DIR": str(root / "var"),
        "CITYLAKE_WAREHOUSE": str(root / "lakehouse"),
        "CITYLAKE_LANDING": str(root / "landing"),
        "CITYLAKE_SOURCE_DB__PORT": str(pg_port),
        "CITYLAKE_SOURCE_DB__WATERMARK_LAG_SECONDS": "0",
        "CITYLAKE_SOURCE_DB__BATCH_ROWS": "700",  # ~9 pages a day of transactions
        "CITYLAKE_EXCHANGE__URL": f"http://127.0.0.1:{ex_port}",
        "CITYLAKE_EXCHANGE__PAGE_SIZE": "500",
    }
    for name, value in env.items():  # the children inherit these
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = get_settings()
    pids: list[int] = []
    try:
        for svc in stack.up(list(stack.SOURCES), settings=settings):
            assert svc.pid is not None
            pids += server_pids(svc.pid) if svc.name == "postgres" else [svc.pid]
        for contract in tables.contracts(settings).values():
            if contract.layer == "ods":
                tables.ensure_native(contract, settings)
        yield settings
        assert sorted(stack.down(list(stack.SOURCES), settings=settings)) == [
            "gov-exchange",
            "postgres",
        ]
        assert not [p for p in pids if alive(p)], "service processes left after stop"
    finally:
        stack.down(list(stack.SOURCES), settings=settings)
        get_settings.cache_clear()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- moving the sources


def bring_day(settings: Settings, day: CityDay, src: Sources, rng: random.Random) -> None:
    """A new city-day at every source; one landing file is also re-sent under another name
    (ingested in parallel with its original when the child uses two workers)."""
    with connect_source_db(settings) as conn:
        for feed, load in zip(
            DB_FEEDS, (payment_db.load_transactions, payment_db.load_settlements), strict=True
        ):
            src.db_rejected += len(load(conn, day.rows(feed)).rejected)
    for feed in EXCHANGE_FEEDS:
        src.published[feed] += [
            str(r["updated_at"]) for r in publish(feed, day.rows(feed), settings)
        ]
    written = sorted(write_day(Path(settings.landing), day).items())
    with dict(written)["merchant_orders"].open("ab") as fh:  # lines for the quarantine
        fh.write(b'{"order_id": "O1", broken\n[1, 2]\n')
    src.landing += written
    feed, path = rng.choice(written)
    resent = path.with_name(f"{path.stem}_resent{path.suffix}")  # same bytes: same delivery
    shutil.copyfile(path, resent)
    src.landing.append((feed, resent))


def churn(settings: Settings, src: Sources, rng: random.Random) -> None:
    """Late changes: updates, refunds and reversals of transactions, corrected settlements,
    new versions of gov records."""
    with connect_source_db(settings) as conn:
        ids = [r[0] for r in conn.execute("SELECT txn_id FROM pay_transactions ORDER BY 1")]
        picks = rng.sample(ids, 60)
        payment_db.update_rows(
            conn,
            payment_db.TRANSACTIONS,
            {(t,): {"amount_fen": str(rng.randint(1, 10**6))} for t in picks[:30]},
        )
        payment_db.refund_transactions(conn, {t: None for t in picks[30:45]})
        payment_db.reverse_transactions(conn, picks[45:])
        keys = conn.execute(
            "SELECT merchant_id, settle_date::text FROM pay_settlements ORDER BY 1, 2"
        ).fetchall()
        # A value never used before: every settlement version is a distinct row.
        payment_db.update_rows(
            conn,
            payment_db.SETTLEMENTS,
            {tuple(k): {"gross_fen": str(next(src.serial))} for k in rng.sample(keys, 15)},
        )
    for feed in EXCHANGE_FEEDS:
        # A changed value (an unchanged record is no new version); stamped at publication.
        column = CHURN_COLUMN[feed]
        records = [
            {**r, column: str(next(src.serial)), "updated_at": None}
            for r in rng.sample(_published_records(settings, feed), 25)
        ]
        src.published[feed] += [str(r["updated_at"]) for r in publish(feed, records, settings)]


def _published_records(settings: Settings, feed: str) -> list[dict[str, str | None]]:
    _, records = read_page(feed, updated_since=None, page=1, page_size=50_000, settings=settings)
    return records


# ---------------------------------------------------------------- the child and its kill


@dataclass(frozen=True)
class Kill:
    """When to SIGKILL: `delay` seconds after the child's imports, or, with an `anchor`
    (mark, n), `delay` seconds after the n-th trace line starting with that mark (so some
    kills land inside or right after a write or a staging, which last milliseconds)."""

    delay: float
    anchor: tuple[str, int] | None = None

    def __str__(self) -> str:
        if self.anchor is None:
            return f"{self.delay:.2f} s into the work"
        return f"{self.delay * 1000:.0f} ms after {self.anchor[0]} #{self.anchor[1]}"


@dataclass(frozen=True)
class Round:
    number: int
    kill: Kill | None  # None: run to completion
    phase: str
    seconds: float


def draw_kill(rng: random.Random, new_day: bool) -> Kill:
    if rng.random() < 0.5:  # anywhere; a new day takes longer to ingest
        return Kill(round(rng.uniform(0.0, 7.0 if new_day else 4.5), 2))
    # In an ODS write, right after it (before the log row), in the log write, in a staging.
    mark = rng.choice(("+write ODS", "-write ODS", "+write ods_delivery_log", "+stage"))
    return Kill(round(rng.uniform(0.0, 0.01), 3), (mark, rng.randint(1, 8)))


def phase_of(trace: Path) -> str:
    """The innermost phase open when the child died (threads may interleave their marks)."""
    open_: list[str] = []
    for stamped in trace.read_text().splitlines() if trace.exists() else []:
        line = stamped.split(" ", 1)[1]
        if line == "done":
            return "finished"
        name = line[1:]
        if line.startswith("+"):
            open_.append(name)
        elif name in open_:
            del open_[len(open_) - 1 - open_[::-1].index(name)]
    if not open_:
        return "between feeds"
    unit, inner = open_[0], open_[-1]
    return f"{unit} / {'between steps' if unit == inner else inner}"


def kind_of(phase: str) -> str:
    """What the process was doing, without the feed: "write ODS", "stage", "fetch page", ..."""
    inner = phase.split(" / ")[-1]
    return "write ODS" if inner.startswith("write ODS") else inner


def _wait_for(child: subprocess.Popen[bytes], trace: Path, mark: str, count: int) -> None:
    """Until the child wrote `count` trace lines starting with `mark` (or ended)."""
    seen, tail = 0, b""
    while not trace.exists() and child.poll() is None:
        time.sleep(0.002)
    with trace.open("rb") as fh:
        while seen < count and child.poll() is None:
            chunk = fh.read()
            if not chunk:
                time.sleep(0.001)
                continue
            *lines, tail = (tail + chunk).split(b"\n")
            seen += sum(1 for line in lines if line.split(b" ", 1)[1].startswith(mark.encode()))


def run_child(number: int, kill: Kill | None, trace_dir: Path) -> Round:
    """Run the child once; SIGKILL it as `kill` says (None: let it finish)."""
    trace = trace_dir / f"round{number:02d}.trace"
    log = trace_dir / f"round{number:02d}.log"
    began = time.monotonic()
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_child", str(SEED * 100 + number), str(trace)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            if kill is None:
                child.wait(timeout=FINAL_TIMEOUT)
            else:
                # Killing a process that is still importing proves nothing: count from after.
                _wait_for(child, trace, *(kill.anchor or ("-start", 1)))
                child.wait(timeout=kill.delay)
        except subprocess.TimeoutExpired:
            # The child may end between the timeout and the kill: it then exits 0, and the
            # round counts as finished (checked below with every other round).
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
    seconds = time.monotonic() - began
    assert not alive(child.pid)
    if child.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"round {number}: the child failed ({child.returncode}):\n{log.read_text()}")
    return Round(number, kill, phase_of(trace), seconds)


# ---------------------------------------------------------------- reading the lake


def read(settings: Settings, table: str, columns: list[str] | None = None) -> pa.Table:
    contract = tables.contract(table, settings)
    return DeltaTable(tables.native_uri(contract, settings)).to_pyarrow_table(columns=columns)


def ods_name(settings: Settings, feed: str) -> str:
    return tables.feed_contract(feed, settings).name


def retriable(settings: Settings, src: Sources) -> set[str]:
    """Delivery ids a rerun will still ingest: staged batches and landing files."""
    ids = {delivery_id(feed, path.read_bytes()) for feed, path in src.landing}
    for data in (settings.var_dir / "staged").glob("*/*.jsonl"):
        meta = data.with_suffix(".meta.json")
        if meta.is_file():
            m = json.loads(meta.read_text())
            ids.add(delivery_id(m["feed"], data.read_bytes(), m["cursor"]))
    return ids


def check_any_time(settings: Settings, src: Sources, feeds: list[str]) -> dict[str, int]:
    """Invariants that hold whenever no ingestion runs, even right after a SIGKILL: every
    committed delivery reconciles against the rows carrying its id, no delivery or line is
    there twice, and rows of uncommitted deliveries belong to deliveries a rerun will finish.
    Returns the rows of such uncommitted deliveries per table."""
    log = read(settings, "ods_delivery_log").to_pylist()
    ids = Counter(r["delivery_id"] for r in log)
    assert not [d for d, n in ids.items() if n > 1], "a delivery logged twice"
    quarantine = read(settings, "ods_quarantine", ["feed", "delivery_id", "source_line"])
    q_ids = Counter(quarantine["delivery_id"].to_pylist())
    q_lines = list(
        zip(
            quarantine["delivery_id"].to_pylist(),
            quarantine["source_line"].to_pylist(),
            strict=True,
        )
    )
    assert len(set(q_lines)) == len(q_lines), "a quarantined line twice"
    can_retry = retriable(settings, src)
    uncommitted: dict[str, int] = {}
    for feed in feeds:
        ods = read(settings, ods_name(settings, feed), ["_delivery_id", "_source_line"])
        dids = ods["_delivery_id"].to_pylist()
        lines = set(zip(dids, ods["_source_line"].to_pylist(), strict=True))
        assert len(lines) == len(dids), f"{feed}: a (_delivery_id, _source_line) twice in ODS"
        counts = Counter(dids)
        for r in (r for r in log if r["feed"] == feed):
            did = r["delivery_id"]
            assert r["loaded"] + r["quarantined"] == r["delivered"], f"{feed} {did}"
            assert counts[did] == r["loaded"], f"{feed} {did}: ODS rows != loaded"
            assert q_ids[did] == r["quarantined"], f"{feed} {did}: quarantine != quarantined"
        orphans = set(counts) - set(ids)
        assert orphans <= can_retry, f"{feed}: rows of a delivery no rerun will commit"
        uncommitted[feed] = sum(counts[d] for d in orphans)
    q_orphans = set(q_ids) - set(ids)
    assert q_orphans <= can_retry, "quarantine rows of a delivery no rerun will commit"
    uncommitted["ods_quarantine"] = sum(q_ids[d] for d in q_orphans)
    return uncommitted


# ---------------------------------------------------------------- final proofs


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _log_of(settings: Settings, feed: str) -> list[dict]:
    """`feed`'s committed deliveries in commit order (the order `staging.last_cursor` uses)."""
    rows = [r for r in read(settings, "ods_delivery_log").to_pylist() if r["feed"] == feed]
    return sorted(rows, key=lambda r: (r["finished_at"], r["cursor"] or ""))


def prove_database_feed(settings: Settings, feed: str) -> None:
    tz = ZoneInfo(settings.timezone)
    ods = read(settings, ods_name(settings, feed)).to_pylist()
    columns = [c.name for c in tables.feed_contract(feed, settings).feed_columns]
    key = list(payment_db.TABLES[feed].key)
    with connect_source_db(settings) as conn:
        current = conn.execute(
            f"SELECT {', '.join(columns)} FROM {feed}"  # names from the contract
        ).fetchall()
        newest = conn.execute(
            f"SELECT updated_at, {', '.join(key)} FROM {feed} "
            f"ORDER BY updated_at DESC, {', '.join(k + ' DESC' for k in key)} LIMIT 1"
        ).fetchone()
    as_fed = [tuple(database.feed_text(v, tz) for v in row) for row in current]
    loaded = [tuple(r[c] for c in columns) for r in ods]
    # Versions: a transaction's is (txn_id, updated_at); a settlement's is its whole row (the
    # test never sets a value twice), as the feed does not carry the database's updated_at.
    if "updated_at" in columns:
        at = columns.index("updated_at")
        versions = Counter((r[0], r[at]) for r in loaded)
        assert {(r[0], r[at]) for r in as_fed} <= set(versions), f"{feed}: versions missing"
    else:
        versions = Counter(loaded)
        assert set(as_fed) <= set(versions), f"{feed}: versions missing"
    assert max(versions.values()) == 1, f"{feed}: a source version loaded twice"

    # The cursor chain: each delivery starts where the one before ended.
    log = _log_of(settings, feed)
    assert all(r["channel"] == "database" for r in log)
    by_delivery: dict[str, list[dict]] = {}
    for r in ods:
        by_delivery.setdefault(r["_delivery_id"], []).append(r)
    previous: tuple | None = None
    for r in log:
        cursor = json.loads(r["cursor"])
        end = (_instant(cursor["updated_at"]), *cursor["key"])
        rows = sorted(by_delivery[r["delivery_id"]], key=lambda x: x["_source_line"])
        assert [rows[-1][k] for k in key] == cursor["key"], f"{feed}: cursor is not the last row"
        if "updated_at" in columns:
            for x in rows:
                position = (_instant(x["updated_at"]), *(x[k] for k in key))
                assert previous is None or previous < position, f"{feed}: a row read again"
                assert position <= end, f"{feed}: a row beyond its cursor"
        assert previous is None or previous < end, f"{feed}: the watermark went back"
        previous = end
    assert newest is not None
    expected = {
        "updated_at": database._watermark_text(newest[0], tz),
        "key": [database.feed_text(v, tz) for v in newest[1:]],
    }
    assert staging.last_cursor(feed, settings) == expected, f"{feed}: watermark != newest row"


def prove_exchange_feed(settings: Settings, feed: str, published: list[str]) -> None:
    ods = read(settings, ods_name(settings, feed), ["updated_at"])["updated_at"].to_pylist()
    quarantined = [
        json.loads(r["raw_record"]).get("updated_at")
        for r in read(settings, "ods_quarantine").to_pylist()
        if r["feed"] == feed
    ]
    # Every published version exactly once, in ODS or in quarantine.
    assert Counter(ods + quarantined) == Counter(published), f"{feed}: versions lost or doubled"
    log = _log_of(settings, feed)
    previous: dict | None = None
    for r in log:  # pages follow each other: no page skipped, none fetched twice
        c = json.loads(r["cursor"])
        if previous is None:
            assert (c["updated_since"], c["page"]) == (None, 1)
        elif previous["has_more"]:
            assert (c["updated_since"], c["page"]) == (
                previous["updated_since"],
                previous["page"] + 1,
            )
        else:
            assert (c["updated_since"], c["page"]) == (previous["max_updated_at"], 1)
        previous = c
    cursor = staging.last_cursor(feed, settings)
    assert cursor is not None and not cursor["has_more"]
    assert cursor["max_updated_at"] == max(published, key=_instant), f"{feed}: watermark"


def prove_landing(settings: Settings, src: Sources, feeds: list[str]) -> None:
    log = [r for r in read(settings, "ods_delivery_log").to_pylist() if r["feed"] in feeds]
    assert all(r["channel"] == "landing" and r["cursor"] is None for r in log)
    expected = {delivery_id(feed, path.read_bytes()) for feed, path in src.landing}
    logged = Counter(r["delivery_id"] for r in log)
    assert set(logged) == expected and max(logged.values()) == 1, "landing files != log rows"


# ---------------------------------------------------------------- the test


@pytest.mark.stack
def test_sigkill_at_random_points_converges(
    crash_stack: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = crash_stack
    rng = random.Random(SEED)
    days = list(generate_city(START, len(NEW_DAY_BEFORE), scale=SCALE, seed=SEED))
    feeds = [c.feed.name for c in tables.contracts(settings).values() if c.feed is not None]
    landing_feeds = [f for f in feeds if f not in DB_FEEDS + EXCHANGE_FEEDS]
    src = Sources()
    rounds: list[Round] = []
    partial = 0  # kills that left rows of an uncommitted delivery behind
    began = time.monotonic()
    for number in range(1, ROUNDS + 1):
        if number in NEW_DAY_BEFORE:
            bring_day(settings, days[NEW_DAY_BEFORE[number]], src, rng)
        else:
            churn(settings, src, rng)
        kill = draw_kill(rng, number in NEW_DAY_BEFORE)
        done = run_child(number, kill, tmp_path)
        rounds.append(done)
        left = check_any_time(settings, src, feeds)
        partial += any(left.values())
        print(
            f"round {number:2d}: killed {kill} in {done.phase}; "
            f"uncommitted rows {sum(left.values())}"
        )
    final = run_child(ROUNDS + 1, None, tmp_path)
    assert final.phase == "finished"
    assert not any(check_any_time(settings, src, feeds).values()), "uncommitted rows remain"
    logged = read(settings, "ods_delivery_log").num_rows
    again = run_child(ROUNDS + 2, None, tmp_path)  # converged: a rerun changes nothing
    assert again.phase == "finished" and read(settings, "ods_delivery_log").num_rows == logged

    for feed in DB_FEEDS:
        prove_database_feed(settings, feed)
    for feed in EXCHANGE_FEEDS:
        prove_exchange_feed(settings, feed, src.published[feed])
    prove_landing(settings, src, landing_feeds)
    assert not [p for p in (settings.var_dir / "staged").rglob("*") if p.is_file()]

    log = read(settings, "ods_delivery_log").to_pylist()
    for feed in feeds:  # ODS rows = delivered - quarantined, per feed
        mine = [r for r in log if r["feed"] == feed]
        rows = read(settings, ods_name(settings, feed), ["_delivery_id"]).num_rows
        assert rows == sum(r["delivered"] - r["quarantined"] for r in mine), feed
    per_feed = {
        f: (
            sum(r["loaded"] for r in log if r["feed"] == f),
            sum(r["quarantined"] for r in log if r["feed"] == f),
            sum(1 for r in log if r["feed"] == f),
        )
        for f in feeds
    }
    phases = Counter(kind_of(r.phase) for r in rounds)
    with capsys.disabled():
        print(
            f"\ncrash test (seed {SEED}): {ROUNDS} SIGKILLs + final run {final.seconds:.1f} s, "
            f"{time.monotonic() - began:.0f} s in all; {partial} kills left a partial delivery; "
            f"kills landed in {dict(phases)}; {src.db_rejected} generated payment rows the "
            "typed database cannot hold were never delivered"
        )
        print("  kills: " + "; ".join(str(r.kill) for r in rounds))
        for f, (loaded, quarantined, deliveries) in per_feed.items():
            print(f"  {f}: {loaded} loaded, {quarantined} quarantined, {deliveries} deliveries")


# ---------------------------------------------------------------- what the kills found


@pytest.mark.spark
def test_a_file_and_its_copy_ingested_at_once_load_once(
    spark, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers commit the same delivery at the same moment: Delta refuses one copy of
    each write, and that is success for the loser, not an error."""
    path = registry(Path(lake.landing))
    shutil.copyfile(path, path.with_name("registry_resent.csv"))
    for name in ("ods_merchant_registry", "ods_delivery_log"):
        tables.ensure_native(tables.contract(name, lake), lake)
    barrier = threading.Barrier(2)
    real_write = tables.write_deltalake

    def together(native: DeltaTable, *args: object, **kwargs: object) -> None:
        if "ods_merchant_registry" in native.table_uri:
            barrier.wait(timeout=30)  # both have checked the txn: now both commit it
        real_write(native, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tables, "write_deltalake", together)
    results = ingest_files("merchant_registry", [path.parent], workers=2, settings=lake)
    assert len({r.delivery_id for r in results}) == 1 and all(r.reconciles for r in results)
    assert read(lake, "ods_merchant_registry").num_rows == 2
    assert read(lake, "ods_delivery_log").num_rows == 1


def test_a_kill_while_unstaging_leaves_no_staged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after a committed batch lost one of its two staged files: the next pull's
    `pending` must leave the staging folder empty."""
    settings = Settings(var_dir=tmp_path / "var")
    batch = staging.stage(
        "pay_transactions",
        [{"txn_id": "T1"}],
        channel="database",
        source="test",
        cursor={"updated_at": "2024-11-05T10:00:00.000000+08:00", "key": ["T1"]},
        business_date=START,
        settings=settings,
    )
    assert batch is not None
    monkeypatch.setattr(staging, "ingest_file", lambda *_, **__: None)  # committed
    real_unlink = Path.unlink

    def killed_after_one(self: Path, missing_ok: bool = False) -> None:
        real_unlink(self, missing_ok=missing_ok)
        monkeypatch.setattr(Path, "unlink", real_unlink)
        raise KeyboardInterrupt("killed between the two removals")

    monkeypatch.setattr(Path, "unlink", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        staging.ingest_batch(batch, settings)
    assert staging.pending("pay_transactions", settings) == []
    assert not list(staging.staging_dir("pay_transactions", settings).iterdir())
