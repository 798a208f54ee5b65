"""Pure statistics: median, p95, ratios. No I/O, no timing."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100) of a non-empty sequence.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    >>> percentile([5], 95)
    5.0
    """
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(float(v) for v in values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def p95(values: Sequence[float]) -> float:
    return percentile(values, 95)


def summary(values: Sequence[float]) -> dict:
    """``{"median", "p95", "n"}`` (NaN for no values)."""
    if not values:
        return {"median": math.nan, "p95": math.nan, "n": 0}
    return {"median": median(values), "p95": p95(values), "n": len(values)}


def ratio(value: float, baseline: float) -> float:
    """value / baseline, NaN when either is missing or the baseline is zero.

    >>> ratio(4.0, 2.0)
    2.0
    """
    if value is None or baseline is None:
        return math.nan
    if not (math.isfinite(value) and math.isfinite(baseline)) or baseline == 0:
        return math.nan
    return value / baseline


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
