"""CPU time of the embedded Spark JVM, by what spent it: JIT compiler, garbage collector, the rest.

Wall time alone cannot tell a change that cut work from a run on a quieter machine (two runs of
one build differ by up to 15 % here, and so does their CPU time); the split says where a change
acted: compiling code, collecting garbage, or the queries themselves. The JVM is this process's
child (pyspark starts it; psutil finds it and its threads' times, as benchmarks/spark_modes.py
does), and its threads are told apart by the names Linux's /proc gives them (elsewhere, or with
a remote Spark, nothing is printed). Per-thread counts of threads that ended are lost, but the
process total keeps them, so the rest is total minus the two.

Beside the CPU it counts the classes Spark compiled from generated code (Janino, on the query
threads: part of the rest) by Spark's own codegen metrics: a plan shape met for the first time
costs a compile and then the JIT's warm-up of the new class, a shape met again costs neither
(spark.sql.codegen.cache.maxEntries, citylake/spark.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil
from pyspark import SparkContext

PROC = Path("/proc")
# HotSpot's thread names (at most 15 characters in /proc): "C2 CompilerThre", "GC Thread#0".
JIT_PREFIXES = ("C1 Compiler", "C2 Compiler", "Sweeper thread")
GC_PREFIXES = ("GC Thread", "G1 ")  # ParallelGC's workers; G1's own threads


@dataclass(frozen=True)
class JvmCpu:
    total: float
    jit: float
    gc: float
    compiled: int | None = None  # classes compiled from generated code (None: no Spark yet)

    def __sub__(self, before: JvmCpu) -> JvmCpu:
        compiled = None
        if self.compiled is not None:
            compiled = self.compiled - (before.compiled or 0)
        return JvmCpu(
            self.total - before.total, self.jit - before.jit, self.gc - before.gc, compiled
        )

    def __str__(self) -> str:
        rest = self.total - self.jit - self.gc
        parts = f"JIT {self.jit:.1f} + GC {self.gc:.1f} + rest {rest:.1f}"
        classes = "" if self.compiled is None else f"; {self.compiled:,} classes compiled"
        return f"JVM CPU {self.total:.1f} s = {parts}{classes}"


def spent(before: JvmCpu | None) -> str:
    """What the JVM spent since `before` (a `jvm_cpu()`), as text; empty when unknown."""
    now = jvm_cpu()
    return f"[{now - before}]" if now is not None and before is not None else ""


def jvm_cpu() -> JvmCpu | None:
    """The CPU seconds the JVMs started by this process have used so far (None: no JVM of its
    own, as with a remote Spark, or no /proc to name its threads)."""
    if not PROC.is_dir():
        return None
    total = jit = gc = 0.0
    found = False
    for child in psutil.Process().children():
        try:
            if child.name() != "java":
                continue
            times, threads = child.cpu_times(), child.threads()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
        found = True
        for thread in threads:
            try:
                name = (PROC / str(child.pid) / "task" / str(thread.id) / "comm").read_text()
            except FileNotFoundError:  # the thread ended since
                continue
            if name.startswith(JIT_PREFIXES):
                jit += thread.user_time + thread.system_time
            elif name.startswith(GC_PREFIXES):
                gc += thread.user_time + thread.system_time
    return JvmCpu(total, jit, gc, _compiled()) if found else None


def _compiled() -> int | None:
    """How many classes Spark's JVM has compiled from generated code (None: no Spark yet)."""
    context = SparkContext._active_spark_context
    if context is None:
        return None
    metrics = context._jvm.org.apache.spark.metrics.source.CodegenMetrics
    return int(metrics.METRIC_COMPILATION_TIME().getCount())
