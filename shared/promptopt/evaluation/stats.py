"""95% confidence intervals for a metric's mean.

- Binary scores (every score 0 or 1): the Wilson score interval, which stays inside [0, 1] and
  behaves at 0/n and n/n where the normal approximation collapses to a zero-width interval.
- Continuous scores: a percentile bootstrap of the mean with a fixed seed (deterministic, no
  distributional assumption, and always inside [min, max] of the scores, so inside [0, 1]).
- No scores: mean 0 with the uninformative interval [0, 1].
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20240601


@dataclass(frozen=True)
class MetricResult:
    """Aggregate of per-row scores: mean with a 95% confidence interval over n rows."""

    name: str
    mean: float
    ci_low: float
    ci_high: float
    n: int


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion of `successes` out of `n`."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact bounds at the extremes (the formula leaves float noise around 0 and 1).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap_interval(
    scores: Sequence[float],
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so repeatable)."""
    n = len(scores)
    if n == 0:
        return 0.0, 1.0
    if n == 1 or min(scores) == max(scores):
        return float(scores[0]), float(scores[0])
    rng = random.Random(seed)  # noqa: S311 - resampling, not crypto
    values = list(scores)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[math.floor(tail * (resamples - 1))]
    high = means[math.ceil((1 - tail) * (resamples - 1))]
    return low, high


def summarize(name: str, scores: Sequence[float]) -> MetricResult:
    """Mean and 95% CI, Wilson when every score is 0 or 1, bootstrap otherwise."""
    n = len(scores)
    if n == 0:
        return MetricResult(name, 0.0, 0.0, 1.0, 0)
    mean = math.fsum(scores) / n
    if all(s in (0.0, 1.0) for s in scores):
        low, high = wilson_interval(sum(scores), n)
    else:
        low, high = bootstrap_interval(scores)
    return MetricResult(name, mean, min(low, mean), max(high, mean), n)
