"""The payment path one business day at a time, with JSON in and JSON out, for orchestrators.

Each function is one Airflow task of ``dags/payment_daily.py``. Tasks of a real scheduler run in
separate processes and exchange only XCom JSON, so a step's state is a plain dict (dates as ISO
strings) and the next step rebuilds the ``BuildResult`` it needs from it. The ODS versions that
``dwd_day`` pinned travel in the state, so every later step and the ADS rows name the same
inputs. Each step keeps the outcomes of its gates in ``dwd_gate_outcome``, as ``build`` does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from citylake.settings import Settings, get_settings
from pipelines.build import BuildResult, build_dwd, build_dws_ads, gate_dwd
from pipelines.dwd.gate_outcome import kept_outcomes
from pipelines.ingest import ingest_files

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


def dwd_day(
    day: Day, *, versions: dict[str, int] | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """ODS -> DWD for the day and its restatement window, behind the ODS→DWD gate.

    A refund delivered today books on its original's day: the run rebuilds the
    ``settings.restatement_days`` days before `day` too (raises ``GateBlocked``).
    """
    settings = settings or get_settings()
    day = as_date(day)
    first = day - dt.timedelta(days=settings.restatement_days)
    with kept_outcomes(first, day, settings):
        result = build_dwd(first, day, settings=settings, versions=versions)
    return state_of(result)


def gate_day(state: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """The DWD→DWS gate over the state's range (raises ``GateBlocked``)."""
    settings = settings or get_settings()
    result = build_result(state)
    with kept_outcomes(result.start, result.end, settings):
        gate_dwd(result, settings)
    return state_of(result, previous=state)


def dws_ads_day(state: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """DWS and ADS for the state's range, stamped with the state's ODS input versions."""
    settings = settings or get_settings()
    result = build_result(state)
    with kept_outcomes(result.start, result.end, settings):  # the model audits' outcome
        result = build_dws_ads(result, settings)
    return state_of(result, previous=state)


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
    )
