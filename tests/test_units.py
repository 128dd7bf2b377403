"""The build's domain units side by side (pipelines/units.py): who waits for whom, how many run
at once, and what a block or an error does to the others."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pipelines.units import Unit, run_units, waits_for
from quality.gate import CheckResult, GateBlocked, GateResult, collecting, record
from warehouse_layers.contract import load_contracts

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = load_contracts(ROOT / "warehouse_layers")


def test_the_settlements_wait_for_the_merchants_they_reference_and_nothing_else_waits() -> None:
    units = [
        Unit("payment", ("dwd_pay_transaction", "dwd_merchant"), lambda: None),
        Unit("settlement", ("dwd_pay_settlement",), lambda: None),
        Unit("enterprise", ("dwd_enterprise",), lambda: None),
        Unit("fuel", ("dwd_fuel_sale", "dwd_fuel_delivery", "dwd_tank_reading",
                      "dwd_fuel_station"), lambda: None),
    ]  # fmt: skip
    assert waits_for(units, CONTRACTS) == {
        "payment": set(),  # dwd_pay_transaction reads dwd_merchant: its own unit
        "settlement": {"payment"},  # merchant_id.references dwd_merchant
        "enterprise": set(),
        "fuel": set(),
    }


class Clock:
    """Who ran when, and the most that ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.spans: dict[str, tuple[float, float]] = {}

    def step(self, label: str, seconds: float = 0.05, then=None):
        def run():
            began = time.monotonic()
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(seconds)
            with self.lock:
                self.now -= 1
            self.spans[label] = (began, time.monotonic())
            return then() if then else label

        return run


def test_a_unit_starts_after_the_units_it_reads_and_no_more_than_at_once_run() -> None:
    clock = Clock()
    units = [
        Unit("payment", ("dwd_merchant", "dwd_pay_transaction"), clock.step("payment", 0.2)),
        Unit("settlement", ("dwd_pay_settlement",), clock.step("settlement")),
        Unit("tax", ("dwd_tax_monthly",), clock.step("tax")),
        Unit("social", ("dwd_social_insurance",), clock.step("social")),
        Unit("orders", ("dwd_merchant_order",), clock.step("orders")),
    ]
    outcomes = run_units(units, CONTRACTS, at_once=2)
    assert list(outcomes) == [u.label for u in units]
    assert [o.value for o in outcomes.values()] == [u.label for u in units]
    assert clock.most == 2
    assert clock.spans["settlement"][0] >= clock.spans["payment"][1]
    assert all(o.seconds >= 0.05 for o in outcomes.values())


def test_one_at_once_runs_the_units_in_their_order() -> None:
    clock = Clock()
    units = [Unit(n, (t,), clock.step(n, 0.01)) for n, t in [
        ("tax", "dwd_tax_monthly"), ("social", "dwd_social_insurance"),
        ("orders", "dwd_merchant_order"),
    ]]  # fmt: skip
    run_units(units, CONTRACTS, at_once=1)
    starts = sorted(clock.spans, key=lambda n: clock.spans[n][0])
    assert starts == ["tax", "social", "orders"] and clock.most == 1


def blocked(table: str) -> GateBlocked:
    check = CheckResult("merchant_id not null", "block", False, 3, 1.0, [])
    return GateBlocked(GateResult(gate="dwd→dws", table=table, rows=300, checks=[check]))


def test_a_blocked_unit_counts_as_done_and_the_others_go_on() -> None:
    def payment():
        raise blocked("dwd_pay_transaction")

    units = [
        Unit("payment", ("dwd_merchant", "dwd_pay_transaction"), payment),
        Unit("settlement", ("dwd_pay_settlement",), lambda: "settled"),
        Unit("tax", ("dwd_tax_monthly",), lambda: "taxed"),
    ]
    outcomes = run_units(units, CONTRACTS, at_once=2)
    assert outcomes["payment"].blocked is not None
    assert outcomes["payment"].blocked.result.table == "dwd_pay_transaction"
    assert outcomes["settlement"].value == "settled" and outcomes["tax"].value == "taxed"


def test_an_error_stops_the_build_after_the_running_units_finish() -> None:
    clock = Clock()

    def broken():
        raise RuntimeError("disk full")

    units = [
        Unit("payment", ("dwd_merchant", "dwd_pay_transaction"), broken),
        Unit("tax", ("dwd_tax_monthly",), clock.step("tax", 0.2)),
        Unit("settlement", ("dwd_pay_settlement",), clock.step("settlement")),
        Unit("social", ("dwd_social_insurance",), clock.step("social")),
    ]
    with pytest.raises(RuntimeError, match="disk full"):
        run_units(units, CONTRACTS, at_once=2)
    assert "tax" in clock.spans  # it was running: it finished
    assert "settlement" not in clock.spans and "social" not in clock.spans  # never started


def test_gate_outcomes_recorded_inside_units_reach_the_builds_collector(tmp_path: Path) -> None:
    from citylake.settings import Settings

    settings = Settings(var_dir=tmp_path)

    def gate(table: str):
        def run():
            record(GateResult(gate="dwd→dws", table=table, rows=1, checks=[]), settings)

        return run

    names = ["dwd_tax_monthly", "dwd_social_insurance", "dwd_merchant_order"]
    with collecting() as outcomes:
        run_units([Unit(n, (n,), gate(n)) for n in names], CONTRACTS, at_once=3)
    assert sorted(r.table for r in outcomes) == sorted(names)
    lines = (tmp_path / "quality" / "gate_runs.jsonl").read_text().splitlines()
    assert len(lines) == 3  # whole lines, one per outcome


def test_units_that_read_each_other_are_refused() -> None:
    # Transactions read the merchants of b; b's industries read the enterprises of a.
    units = [
        Unit("a", ("dwd_pay_transaction", "dwd_enterprise"), lambda: None),
        Unit("b", ("dwd_merchant", "dwd_dim_industry"), lambda: None),
    ]
    assert waits_for(units, CONTRACTS) == {"a": {"b"}, "b": {"a"}}
    with pytest.raises(ValueError, match="cycle"):
        run_units(units, CONTRACTS, at_once=2)


def test_validations_side_by_side_borrow_gx_contexts_of_their_own(spark) -> None:
    # `spark` first: a GX Spark data source starts a plain session (no Delta) if none runs.
    from quality.gate import _batch_definition

    with _batch_definition() as first, _batch_definition() as second:
        assert first is not second  # two gates at once: two contexts
        assert first.data_asset.datasource.data_context is not (
            second.data_asset.datasource.data_context
        )
    with _batch_definition() as again:
        assert again in (first, second)  # set up once, then reused


@pytest.mark.spark
def test_the_models_whose_inputs_are_built_run_side_by_side(
    spark, lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLMesh evaluates models on `units_at_once` threads: with 2, a second model starts while
    the first runs (the first waits for it, so the test does not depend on timing)."""
    import datetime as dt

    from sqlmesh.core.scheduler import Scheduler

    from citylake.settings import get_settings
    from pipelines.build import build
    from pipelines.ingest import ingest_file
    from tests.payment_files import TXN_HEADER, registry, txn, write

    monkeypatch.setenv("CITYLAKE_UNITS_AT_ONCE", "2")
    get_settings.cache_clear()
    evaluate = Scheduler.evaluate
    lock, second = threading.Lock(), threading.Event()
    started: list[str] = []
    running = [0, 0]  # now, most

    def timed(self, snapshot, *args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            started.append(snapshot.name)
            running[0] += 1
            running[1] = max(running)
            first = len(started) == 1
        if first:
            second.wait(60)  # one at a time, no second comes and the assert below fails
        else:
            second.set()
        try:
            return evaluate(self, snapshot, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(Scheduler, "evaluate", timed)
    day = dt.date(2024, 11, 5)
    ingest_file(registry(Path(lake.landing)), "merchant_registry")
    rows = [txn("T1", "M1", "2024-11-05T12:00:00+08:00", 1000)]
    path = write(Path(lake.landing), "pay_transactions", str(day), "d.csv", TXN_HEADER, rows)
    ingest_file(path, "pay_transactions")
    build(day, day)
    assert running[1] == 2, started
