"""Statistics every layer reports with: the Wilson score interval for success rates.

Suites and skill evaluations are small (tens of attempts), where the normal approximation gives intervals
outside [0, 1] or of zero width. It lives in ``tools/`` because the evals, the policies' benchmarks and the
agent's skill library all judge success rates with it.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there is no data.

    The bounds are clamped to contain the observed rate: at 0% or 100% rounding can otherwise put a
    bound a hair on the wrong side (and a plot's error bar below zero)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))
