"""Timing several ways to do one thing, in turns, for ratios that hold on a machine whose
pace drifts.

On a shared or virtual machine the same run can take a third more or less from one
minute to the next. Timed one after the other, each way gets its own stretch of that
drift, and their ratio moves with it. Taken in turns (every way once per turn, the
order turned round from one turn to the next), runs that are compared lie side by side
in time: the ratio of each turn is taken, and their median counts.

    times = in_turns({"lite": run_lite, "impasto": run_ours}, repeats=5)
    cell(times, "impasto", "lite")   # '212 ms (1.31x, 1.22–1.40)'
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def in_turns(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Each run's times in ms over `repeats` turns, after a warm-up of each (allocations,
    oneDNN's and onnxruntime's choice of kernels). Turn i starts at run i (mod the
    number of runs), so each run takes each place in the order: none is always first."""
    names = list(runs)
    for name in names:
        runs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(repeats):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            start = time.perf_counter()
            runs[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def ratios(times: dict[str, list[float]], who: str, base: str) -> list[float]:
    """`who`'s time over `base`'s, turn by turn."""
    return [a / b for a, b in zip(times[who], times[base], strict=True)]


def cell(times: dict[str, list[float]], who: str, base: str) -> str:
    """A table cell: `who`'s median time, and the median and range of its turns' ratios
    to `base`'s."""
    if who == base:
        return f"{statistics.median(times[who]):.0f} ms (1.00x)"
    r = ratios(times, who, base)
    return (
        f"{statistics.median(times[who]):.0f} ms ({statistics.median(r):.2f}x, "
        f"{min(r):.2f}–{max(r):.2f})"
    )
