"""Trend charts of the regulator report (docx) drawn by matplotlib with a CJK font.

matplotlib's default DejaVu has no Chinese glyphs and draws boxes (tofu): the chart uses Noto
Sans CJK (Debian `fonts-noto-cjk`, installed by infra/setup/bootstrap.sh), found through
matplotlib's font manager, and fails loudly when it is missing rather than draw boxes.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib import font_manager

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC")


@cache
def cjk_family() -> str:
    """The first installed Noto Sans CJK family matplotlib knows."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return family
    # The font cache predates the font's installation: look at the system's fonts again.
    for path in font_manager.findSystemFonts():
        if "NotoSansCJK" in Path(path).name:
            font_manager.fontManager.addfont(path)
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return family
    raise RuntimeError(
        "no CJK font for the report's charts: install Debian's fonts-noto-cjk "
        "(apt-get install fonts-noto-cjk)"
    )


def trend_chart(
    title: str,
    days: list[dt.date],
    series: dict[str, list[float | None]],
    path: Path,
    *,
    percent: bool = True,
) -> Path:
    """A line per series over the days, as a PNG at `path`: shares (0..1) drawn as percent,
    or counts."""
    family = cjk_family()
    with plt.rc_context({"font.family": family, "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=150)
        for name, values in series.items():
            # None (nothing delivered / nothing due) is a gap in the line, not a zero.
            scale = 100 if percent else 1
            ys = [float("nan") if v is None else scale * v for v in values]
            ax.plot(days, ys, marker="o", markersize=3, linewidth=1.5, label=name)
        ax.set_title(title)
        if percent:
            ax.set_ylabel("%")
            ax.set_ylim(0, 105)
        else:
            ax.set_ylabel("项")
            ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        # The axis spans the period's days: autoscaled to the drawn points, a period whose
        # values all fall on one day (the others None) spread over four years of ticks.
        if days:
            half, midnight = dt.timedelta(hours=12), dt.time()
            first, last = (dt.datetime.combine(d, midnight) for d in (min(days), max(days)))
            ax.set_xlim(first - half, last + half)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        # Whole days only (an automatic locator ticks hours on a short period).
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, len(days) // 10)))
        if series:
            ax.legend(loc="lower left", fontsize=7, ncols=min(4, len(series)))
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return path
