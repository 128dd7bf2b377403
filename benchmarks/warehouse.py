"""The throwaway warehouse a benchmark runs in, on the embedded defaults."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def throwaway(name: str) -> Path:
    """./var/`name`, deleted first, as the warehouse, landing area and state of this process:
    set before citylake reads its settings (the benchmarks import it after)."""
    root = Path("var", name).resolve()
    shutil.rmtree(root, ignore_errors=True)
    os.environ.update(
        CITYLAKE_WAREHOUSE=str(root / "lakehouse"),
        CITYLAKE_LANDING=str(root / "landing"),
        CITYLAKE_VAR_DIR=str(root),
    )
    return root
