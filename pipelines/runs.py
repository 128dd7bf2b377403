"""The platform's steps with JSON in and JSON out, for orchestrators: a feed's day (ingest or
pull, then its ODS gate) and a domain's layers for a range of days (DWD behind its gates, then
DWS and ADS).

Each function is one Airflow task of the DAGs ``pipelines/orchestration.py`` generates from
the contracts. Tasks of a real scheduler run in
separate processes and exchange only XCom JSON, so a step's state is a plain dict (dates as ISO
strings) and the next step rebuilds the ``BuildResult`` it needs from it. The ODS versions that
``domain_dwd`` pinned travel in the state, so every later step and the ADS rows name the same
inputs. Each step keeps the outcomes of its gates in ``dwd_gate_outcome``, as ``build`` does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from citylake.settings import Settings, get_settings
from citylake.spark import get_spark
from pipelines.build import (
    FUEL_DWD,
    FUEL_STATION,
    BuildResult,
    build_dimensions,
    build_dws_ads,
    build_units,
    delivered,
    fuel_restated,
    pin_inputs,
    quality_inputs,
)
from pipelines.dwd.gate_outcome import kept_outcomes
from pipelines.ingest import DeliveryResult, ingest_files
from pipelines.modeling.runner import day_runs, run_days

ENTERPRISE_FEED = ("gov_enterprise_registry",)

Day = dt.date | str


class DeliveryNotReconciled(RuntimeError):
    """A delivery's lines are not all accounted for: loaded + quarantined != delivered."""


def as_date(day: Day) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(day)


def landing_folder(feed: str, day: Day, settings: Settings | None = None) -> Path:
    """`<landing>/<feed>/<yyyy-mm-dd>/`: where the producer drops the day's files."""
    settings = settings or get_settings()
    if "://" in settings.landing:
        raise NotImplementedError(f"ingest reads a local landing zone, not {settings.landing}")
    return Path(settings.landing) / feed / as_date(day).isoformat()


def ingest_day(feed: str, day: Day, *, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Ingest every file of the day's landing folder (none if it does not exist) into ODS.

    Returns one summary per delivery; raises ``DeliveryNotReconciled`` if any delivery loses
    lines (after all of them were ingested and logged).
    """
    settings = settings or get_settings()
    folder = landing_folder(feed, day, settings)
    if not folder.is_dir():
        return []
    results = ingest_files(feed, [folder], business_date=as_date(day), settings=settings)
    return _summaries(results)


def _summaries(results: list[DeliveryResult]) -> list[dict[str, Any]]:
    """One JSON summary per delivery; raises ``DeliveryNotReconciled`` if any delivery lost
    lines (after all of them were ingested and logged)."""
    summary = [
        {
            "source": Path(r.source).name,
            "delivery_id": r.delivery_id,
            "business_date": r.business_date.isoformat(),
            "delivered": r.delivered,
            "loaded": r.loaded,
            "quarantined": r.quarantined,
            "status": r.status,
            "already_ingested": r.already_ingested,
            "error": r.error,
        }
        for r in results
    ]
    broken = [r for r in results if not r.reconciles]
    if broken:
        raise DeliveryNotReconciled(
            "; ".join(
                f"{r.source}: delivered {r.delivered} != loaded {r.loaded} "
                f"+ quarantined {r.quarantined}"
                for r in broken
            )
        )
    return summary


def pull_day(feed: str, day: Day, *, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Pull a database or exchange feed from its last committed cursor; the deliveries carry
    `day` as their business date. Same summaries and reconciliation as ``ingest_day``."""
    from pipelines.channels.pull import pull_feed

    settings = settings or get_settings()
    return _summaries(pull_feed(feed, business_date=as_date(day), settings=settings))


def ods_gate(feed: str, day: Day, *, settings: Settings | None = None) -> dict[str, Any]:
    """The ODS gate of a feed's day, from the delivery log alone (no JVM): the share of the
    day's delivered lines quarantined at ingestion may not exceed the contract's
    ``max_reject_rate`` (raises ``GateBlocked`` and alerts). A day without deliveries passes."""
    import pyarrow.compute as pc

    from pipelines import tables
    from quality.gate import enforce_share
    from quality.suites import reject_rate_name

    settings = settings or get_settings()
    ods = tables.feed_contract(feed, settings)
    assert ods.feed is not None
    log = tables.read_native(
        tables.contract("ods_delivery_log", settings),
        (pc.field("feed") == feed) & (pc.field("business_date") == as_date(day)),
        settings,
    ).to_pylist()
    loaded = sum(r["loaded"] for r in log)
    quarantined = sum(r["quarantined"] for r in log)
    result = enforce_share(
        reject_rate_name(ods.feed.max_reject_rate),
        {None: loaded, "quarantined at ingestion": quarantined},
        ods.feed.max_reject_rate,
        gate="ods",
        table=ods.name,
        settings=settings,
    )
    return {
        "feed": feed,
        "business_date": as_date(day).isoformat(),
        "deliveries": len(log),
        "loaded": loaded,
        "quarantined": quarantined,
        "gate": result.describe(),
    }


def domain_dwd(
    domain: str, start: Day, end: Day, *, settings: Settings | None = None
) -> dict[str, Any]:
    """ODS -> DWD of one domain for [start, end] and its restatement window, behind the
    ODS→DWD and DWD→DWS gates; the conformed dimensions and the quality scorecard's inputs
    (its gate outcomes, feeds and deliveries) too.

    A refund delivered today books on its original's day: the run rebuilds the
    ``settings.restatement_days`` days before `start` as well. Returns the state that
    ``domain_dws_ads`` continues from (the pinned ODS versions, the DWD tables rebuilt, and
    those a blocking gate held with the blocks' reasons). A block does not fail this task: the
    domain's other units are promoted by ``domain_dws_ads``, which then fails the run.
    """
    settings = settings or get_settings()
    first = as_date(start) - dt.timedelta(days=settings.restatement_days)
    last = as_date(end)
    with kept_outcomes(first, last, settings) as keep_outcomes:
        versions = pin_inputs(get_spark(settings), settings)
        units = build_units(first, last, settings, versions, domain)
        result, rebuilt = units.result, units.rebuilt
        if units.fuel is not None:
            result.days |= fuel_restated(units.fuel, first, last, settings)
            rebuilt += [*FUEL_DWD, FUEL_STATION]
        enterprises = ["dwd_enterprise"] if delivered(ENTERPRISE_FEED, settings) else []
        rebuilt += build_dimensions([*rebuilt, *enterprises], settings, units.held)
        # As in `build`: the domain's gates have spoken, so `dws_ads` restates the quality
        # scorecard of the run's days with their outcomes (and every other feed's, as kept).
        keep_outcomes()
        rebuilt += quality_inputs(result, settings)
    return state_of(result) | {
        "domain": domain,
        "rebuilt": rebuilt,
        "held": units.held,
        "blocked": [str(b) for b in units.blocks],
    }


class LayersHeld(RuntimeError):
    """A gate of the domain's `dwd` step blocked: the tables it held (and everything built
    from them) kept their rows, the rest of the domain was promoted. Each block alerted when
    its gate ran; this fails the run after the promotion, so it shows as failed."""


def domain_dws_ads(state: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """DWS and ADS downstream of the state's rebuilt DWD tables for its range (and the days
    before it that late rows touched), stamped with the state's ODS input versions; nothing
    downstream of a table the state's gates held. Raises ``LayersHeld`` once the rest is
    built if a gate blocked."""
    settings = settings or get_settings()
    result = build_result(state)
    held = tuple(state.get("held", ()))
    with kept_outcomes(result.start, result.end, settings):  # the model audits' outcome
        result = build_dws_ads(result, settings, tuple(state.get("rebuilt", ())), held)
    if state.get("blocked"):
        lines = [*state["blocked"], f"held: {', '.join(held)}"]
        raise LayersHeld("\n".join(lines))
    return state_of(result, previous=state) | {
        "domain": state.get("domain"),
        "rebuilt": state.get("rebuilt", []),
    }


def state_of(result: BuildResult, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-serializable dict of a ``BuildResult``; gates are kept as their descriptions.

    With `previous`, its rows and gate descriptions come first (a later step adds to them).
    """
    previous = previous or {}
    return {
        "start": result.start.isoformat() if result.start else None,
        "end": result.end.isoformat() if result.end else None,
        "input_versions": dict(result.input_versions),
        "rows": {**previous.get("rows", {}), **result.rows},
        "quarantined": dict(result.quarantined),
        "gates": [*previous.get("gates", []), *(g.describe() for g in result.gates)],
        "ads_path": result.ads_path or previous.get("ads_path", ""),
        "days": sorted(d.isoformat() for d in result.days),
        # as runs of days: a first build's tax history is years of them
        "restated": {
            name: [[a.isoformat(), b.isoformat()] for a, b in day_runs(days)]
            for name, days in sorted(result.restated.items())
        },
    }


def build_result(state: dict[str, Any]) -> BuildResult:
    """The ``BuildResult`` a state describes (without its gates: those already ran)."""
    return BuildResult(
        start=as_date(state["start"]) if state.get("start") else None,
        end=as_date(state["end"]) if state.get("end") else None,
        input_versions={k: int(v) for k, v in state["input_versions"].items()},
        rows=dict(state.get("rows", {})),
        quarantined=dict(state.get("quarantined", {})),
        ads_path=state.get("ads_path", ""),
        days={as_date(d) for d in state.get("days", [])},
        restated={
            name: run_days((as_date(a), as_date(b)) for a, b in runs)
            for name, runs in state.get("restated", {}).items()
        },
    )
