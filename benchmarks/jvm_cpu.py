"""CPU time of the embedded Spark JVM, by what spent it: JIT compiler, garbage collector, the rest.

Wall time alone cannot tell a change that cut work from a run on a quieter machine (two runs of
one build differ by up to 15 % here, and so does their CPU time); the split says where a change
acted: compiling code, collecting garbage, or the queries themselves. Read from Linux's /proc
(elsewhere, or with a remote Spark, nothing is printed): the JVM is this process's child
(pyspark starts it), and its threads are told apart by name. Per-thread counts of threads that
ended are lost, but the process total keeps them, so the rest is total minus the two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# HotSpot's thread names (at most 15 characters in /proc): "C2 CompilerThre", "GC Thread#0".
JIT_PREFIXES = ("C1 Compiler", "C2 Compiler", "Sweeper thread")
GC_PREFIXES = ("GC Thread", "G1 ")  # ParallelGC's workers; G1's own threads


@dataclass(frozen=True)
class JvmCpu:
    total: float
    jit: float
    gc: float

    def __sub__(self, before: JvmCpu) -> JvmCpu:
        return JvmCpu(self.total - before.total, self.jit - before.jit, self.gc - before.gc)

    def __str__(self) -> str:
        rest = self.total - self.jit - self.gc
        parts = f"JIT {self.jit:.1f} + GC {self.gc:.1f} + rest {rest:.1f}"
        return f"JVM CPU {self.total:.1f} s = {parts}"


def _cpu(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def spent(before: JvmCpu | None) -> str:
    """What the JVM spent since `before` (a `jvm_cpu()`), as text; empty when unknown."""
    now = jvm_cpu()
    return f"[{now - before}]" if now is not None and before is not None else ""


def jvm_cpu() -> JvmCpu | None:
    """The CPU seconds the JVMs started by this process have used so far (None: not on Linux,
    or no JVM of its own: a remote Spark)."""
    if not PROC.is_dir():
        return None
    total = jit = gc = 0.0
    found = False
    me = str(os.getpid())
    for proc in PROC.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[1] != me:  # the parent's pid
                continue
            if "java" not in (proc / "comm").read_text():
                continue
            total += _cpu(stat)
            found = True
            for task in (proc / "task").iterdir():
                name = (task / "comm").read_text().strip()
                if name.startswith(JIT_PREFIXES):
                    jit += _cpu((task / "stat").read_text())
                elif name.startswith(GC_PREFIXES):
                    gc += _cpu((task / "stat").read_text())
        except OSError:  # a process or thread that ended while being read
            continue
    return JvmCpu(total, jit, gc) if found else None
