"""The content/style balance, chosen per pair.

One fixed content weight α keeps some photos and loses others: a painting far from the
photo (a seascape over a skyline) pulls the picture further than one close to it. So the
coarsest scale, which costs a few seconds, is painted first with the default α, its
content distance measured (relu4_2, as `impasto evaluate` measures it), and, when that
lies outside the band around the target, painted again with α moved toward it. The
content distance falls about as 1/α (docs/benchmarks.md), so one correction usually
lands; a second one interpolates between the two tries.
"""

from __future__ import annotations

import math

# The final picture's content distance over the coarsest scale's grows with the scales
# that follow: measured on the quality benchmark's pairs, 1.0-1.65 (1.45 on average) over
# 3 scales (256 px), 1.75-1.95 over 5 (512 px); about 1 + 0.225 per scale after the first.
GROWTH_PER_SCALE = 0.225
TOLERANCE = 0.2  # a coarse distance within 20 % of its target is kept
TRIES = 3  # paintings of the coarsest scale at most, the first included
STEP_LIMIT = 8.0  # α moves at most this factor per try
SLOPE = -1.0  # d log(distance) / d log(α), before two tries measure it


def coarse_target(target: float, scales: int) -> float:
    """The coarsest scale's content distance that leads to `target` at the end of a
    ladder of `scales` scales."""
    return target / (1 + GROWTH_PER_SCALE * (scales - 1))


def settled(distance: float, goal: float) -> bool:
    return abs(math.log(max(distance, 1e-6) / goal)) <= math.log1p(TOLERANCE)


def next_weight(tries: list[tuple[float, float]], goal: float) -> float:
    """The content weight to try next, from the (weight, distance) pairs tried so far:
    along the measured slope in log-log, or the usual one after a single try."""
    (w1, d1), slope = tries[-1], SLOPE
    if len(tries) > 1:
        w0, d0 = tries[-2]
        if w0 != w1 and d0 > 0 and d1 > 0:
            measured = math.log(d1 / d0) / math.log(w1 / w0)
            slope = min(-0.25, max(-4.0, measured))  # a noisy slope: kept within reason
    factor = math.exp(math.log(goal / max(d1, 1e-6)) / slope)
    return w1 * min(STEP_LIMIT, max(1 / STEP_LIMIT, factor))
