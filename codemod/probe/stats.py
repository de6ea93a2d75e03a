"""Step-time statistics for the probe's report: medians, quartiles, and ratios by round."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """One variant's step times, in milliseconds."""

    median: float
    p25: float
    p75: float
    steps: int


def summarize(seconds: Sequence[float]) -> Summary:
    ms = sorted(s * 1000.0 for s in seconds)
    if len(ms) < 2:
        return Summary(ms[0], ms[0], ms[0], len(ms))
    p25, _, p75 = statistics.quantiles(ms, n=4, method="inclusive")
    return Summary(statistics.median(ms), p25, p75, len(ms))


def ratio_by_round(
    slow: Sequence[Sequence[float]], fast: Sequence[Sequence[float]]
) -> tuple[float, float]:
    """(lowest, highest) of median(slow) / median(fast) over rounds: how much the ratio moves."""
    ratios = [
        statistics.median(a) / statistics.median(b)
        for a, b in zip(slow, fast)
        if a and b and statistics.median(b) > 0
    ]
    return (min(ratios), max(ratios)) if ratios else (float("nan"), float("nan"))


def fmt_ms(value: float) -> str:
    """Milliseconds in fixed point, three digits or whole: 0.412, 7.12, 91.7, 1110 (never
    1.11e+03). codemod/pairing.py renders probe times in scan reasons the same way."""
    if value >= 100:
        return f"{value:.0f}"
    if value < 0.001:
        return f"{value:.4f}"
    return f"{value:.3g}"


def fmt_bytes(value: float) -> str:
    """1.5 GiB, 12.3 MiB, 640 KiB: peak memory in the report."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value / 1024:.0f} KiB"
