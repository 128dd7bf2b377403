"""A build's domain units, run side by side on one Spark session.

A unit is one domain's DWD work (payment; each government, settlement and order feed; fuel):
the DWD tables it writes and the step that writes them behind their gates. Units write disjoint
tables, so they can run at once; a unit waits only for the units whose tables it reads, by the
contracts (a table's `upstream`, and the tables its `references` cross checks look up: the
settlements' gate reads the merchants that the payment unit writes).

Why threads: part of a unit's wall time is the driver waiting (py4j round trips, job scheduling,
delta-rs commits) while a core idles. On the embedded 2-core machine a build was already 83-91 %
busy one unit at a time, so two at once gained about a fifth of the DWD time, not half
(issue #4); on a cluster the scheduler spreads their jobs. Each unit
runs in a copy of the caller's context, so the gate outcomes it records reach the build's
``collecting()`` list and its cached frames are its own (pipelines/cached.py).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from quality.gate import GateBlocked
from warehouse_layers.contract import References, TableContract


@dataclass(frozen=True)
class Unit:
    """One domain's part of a build: its DWD tables (held when one of its gates blocks) and
    the step that builds them."""

    label: str
    tables: tuple[str, ...]
    step: Callable[[], object]


@dataclass
class Outcome:
    """What a unit came to: its step's value, or the gate that blocked it."""

    value: object = None
    blocked: GateBlocked | None = None
    seconds: float = 0.0  # the unit's own wall time (units side by side overlap)


def waits_for(units: list[Unit], contracts: Mapping[str, TableContract]) -> dict[str, set[str]]:
    """Each unit's label -> the labels of the units whose tables it reads."""
    owner = {name: unit.label for unit in units for name in unit.tables}
    needs: dict[str, set[str]] = {}
    for unit in units:
        reads = set()
        for name in unit.tables:
            table = contracts[name]
            reads |= set(table.upstream)
            reads |= {c.table for c in table.cross_checks if isinstance(c, References)}
        needs[unit.label] = {owner[t] for t in reads if t in owner} - {unit.label}
    return needs


def run_units(
    units: list[Unit], contracts: Mapping[str, TableContract], at_once: int
) -> dict[str, Outcome]:
    """Run every unit, at most `at_once` together, each after the units it reads from; returns
    each unit's outcome by label, in the order of `units`.

    A unit a gate blocked still counts as done: the units after it read its tables as the gate
    left them (unchanged). Any other error stops the build: no unit starts after it, the ones
    running finish, and the error is raised.
    """
    needs = waits_for(units, contracts)
    try:
        TopologicalSorter(needs).prepare()
    except CycleError as cycle:
        cycle_of = cycle.args[1]
        raise ValueError(f"build units read each other's tables in a cycle: {cycle_of}") from None
    outcomes: dict[str, Outcome] = {}
    pending = list(units)
    running: dict[Future[Outcome], Unit] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, at_once), thread_name_prefix="unit") as pool:
        while pending or running:
            ready = [u for u in pending if needs[u.label] <= outcomes.keys()]
            for unit in ready if failure is None else []:
                if len(running) >= max(1, at_once):
                    break
                pending.remove(unit)
                # A copy per unit: one context cannot be entered by two threads at once.
                running[pool.submit(contextvars.copy_context().run, _run, unit)] = unit
            if failure is not None:
                pending.clear()
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                unit = running.pop(future)
                try:
                    outcomes[unit.label] = future.result()
                except BaseException as error:  # raised once the running ones finish
                    failure = failure or error
    if failure is not None:
        raise failure
    return {u.label: outcomes[u.label] for u in units}


def _run(unit: Unit) -> Outcome:
    began = time.perf_counter()
    try:
        value, blocked = unit.step(), None
    except GateBlocked as gate:
        value, blocked = None, gate
    return Outcome(value, blocked, time.perf_counter() - began)
