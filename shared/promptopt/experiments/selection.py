"""Choosing among candidates: paired lifts with a CI, GEPA's Pareto front, and successive halving.

Everything here is pure: the run engine passes per-row scores and keeps the results.

- `paired_lift` / `accepts`: a candidate replaces the incumbent only when the 95% bootstrap CI of
  the per-row score differences (same rows) clears `min_improvement`, so noise is never accepted;
  `futile`: validation's first look stops a candidate whose lift so far cannot clear it.
- `pareto_front` / `pick_parents`: every candidate that is best on at least one validation row and
  not dominated stays a possible parent, drawn with probability proportional to the rows it wins;
  this keeps diversity that a single incumbent loses.
- `rank` / `keep_best`: successive halving's selection, best mean first with explicit tie-breaks.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TIE = 1e-9  # means closer than this are tied (float noise of sums over rows)
_BYTES_MAX_ROWS = 255  # rows a random byte can index, with 255 as the rejection sentinel


@dataclass(frozen=True)
class Lift:
    """Mean per-row difference (candidate minus incumbent) with its 95% CI over `n` paired rows."""

    mean: float
    ci_low: float
    ci_high: float
    n: int


def paired_lift(
    candidate: Sequence[float], incumbent: Sequence[float], *, seed: int = 0, resamples: int = 2000
) -> Lift:
    """The mean per-row difference and its 95% percentile-bootstrap CI (same rows, seeded).

    Raises ValueError when the lengths differ. No rows give the uninformative interval [-1, 1].
    """
    if len(candidate) != len(incumbent):
        raise ValueError(f"paired scores need the same rows: {len(candidate)} vs {len(incumbent)}")
    n = len(candidate)
    if n == 0:
        return Lift(0.0, -1.0, 1.0, 0)
    diffs = [float(c) - float(i) for c, i in zip(candidate, incumbent, strict=True)]
    mean = math.fsum(diffs) / n
    if n == 1 or min(diffs) == max(diffs) or resamples < 1:
        return Lift(mean, min(diffs), max(diffs), n)
    rng = random.Random(seed)  # noqa: S311 - resampling, not crypto
    means = sorted(_resampled_sums(diffs, resamples, rng))
    low = means[math.floor(0.025 * (resamples - 1))] / n
    high = means[math.ceil(0.975 * (resamples - 1))] / n
    return Lift(mean, min(low, mean), max(high, mean), n)


def _resampled_sums(diffs: list[float], resamples: int, rng: random.Random) -> list[float]:
    """The sums of `resamples` bootstrap resamples of `diffs` (n draws with replacement each)."""
    n = len(diffs)
    if n > _BYTES_MAX_ROWS:
        return [sum(rng.choices(diffs, k=n)) for _ in range(resamples)]
    # Fast path (about 10x quicker than choices): random bytes are row indices; bytes >= n are
    # rejected (mapped to the sentinel 255 by one translate, then removed), so draws stay uniform.
    table = bytes(b if b < n else 255 for b in range(256))
    need = n * resamples
    drawn = bytearray()
    while len(drawn) < need:
        raw = rng.randbytes(int((need - len(drawn)) * 256 / n * 1.05) + 64)
        drawn += raw.translate(table).replace(b"\xff", b"")
    return [sum(map(diffs.__getitem__, drawn[i * n : (i + 1) * n])) for i in range(resamples)]


def accepts(lift: Lift, min_improvement: float) -> bool:
    """True only for a real improvement: the CI's lower bound is above `min_improvement`."""
    return lift.n > 0 and lift.ci_low > min_improvement


def futile(lift: Lift, min_improvement: float) -> bool:
    """True when validation's first look rules a candidate out (validation stops there).

    That is when its paired lift on the rows seen so far is not above `min_improvement`, or its
    CI's upper bound is not.
    """
    return lift.n > 0 and (lift.mean <= min_improvement or lift.ci_high <= min_improvement)


def pareto_front(scores: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """GEPA's frontier over validation rows: candidate id -> number of rows it is best on (ties count).

    A candidate is on the front when it is best on at least one row and no other candidate
    dominates it (scores at least as high on every row and higher on one). Rows where every
    candidate scores 0 are ignored. Raises ValueError when the candidates have different rows.
    """
    ids = sorted(scores)
    if not ids:
        return {}
    rows = {len(scores[c]) for c in ids}
    if len(rows) != 1:
        raise ValueError(f"every candidate needs scores on the same rows, got lengths {sorted(rows)}")
    wins = dict.fromkeys(ids, 0)
    for j in range(rows.pop()):
        column = [float(scores[c][j]) for c in ids]
        if all(value == 0 for value in column):
            continue
        best = max(column)
        for c, value in zip(ids, column, strict=True):
            if value >= best - TIE:
                wins[c] += 1
    return {c: wins[c] for c in ids if wins[c] > 0 and not _dominated(c, ids, scores)}


def _dominated(c: str, ids: Sequence[str], scores: Mapping[str, Sequence[float]]) -> bool:
    mine = scores[c]
    for other in ids:
        if other == c:
            continue
        theirs = scores[other]
        pairs = list(zip(theirs, mine, strict=True))
        if all(t >= m - TIE for t, m in pairs) and any(t > m + TIE for t, m in pairs):
            return True
    return False


def pick_parents(front: Mapping[str, int], k: int, rng: random.Random) -> list[str]:
    """`k` parents drawn with probability proportional to the rows they win.

    Distinct while the front has members left (weighted draws without replacement); once every
    member is drawn, the rest are drawn with replacement. An empty front gives no parents.
    """
    members = sorted(front)
    if not members or k <= 0:
        return []
    weights = {m: max(0.0, float(front[m])) for m in members}
    if not any(weights.values()):
        weights = dict.fromkeys(members, 1.0)
    chosen: list[str] = []
    left = [m for m in members if weights[m] > 0]
    while left and len(chosen) < k:
        pick = rng.choices(left, weights=[weights[m] for m in left])[0]
        chosen.append(pick)
        left.remove(pick)
    drawable = [m for m in members if weights[m] > 0]
    while len(chosen) < k:
        chosen.append(rng.choices(drawable, weights=[weights[m] for m in drawable])[0])
    return chosen


def rank(
    scores: Mapping[str, float],
    *,
    secondary: Mapping[str, float] | None = None,
    cost: Mapping[str, float] | None = None,
) -> list[str]:
    """Ids, best mean first, with ties (|difference| < 1e-9) broken as successive halving needs.

    Ties go to the higher secondary score, then the lower cost (tokens per row), then the smaller
    id; a missing secondary or cost ranks last among ties.
    """
    second = secondary or {}
    price = cost or {}

    def compare(a: str, b: str) -> int:
        if abs(scores[a] - scores[b]) >= TIE:
            return -1 if scores[a] > scores[b] else 1
        sa, sb = second.get(a, -math.inf), second.get(b, -math.inf)
        if sa != sb:
            return -1 if sa > sb else 1
        ca, cb = price.get(a, math.inf), price.get(b, math.inf)
        if ca != cb:
            return -1 if ca < cb else 1
        return -1 if a < b else (1 if a > b else 0)

    return sorted(scores, key=functools.cmp_to_key(compare))


def keep_best(
    scores: Mapping[str, float],
    keep: int,
    *,
    secondary: Mapping[str, float] | None = None,
    cost: Mapping[str, float] | None = None,
) -> list[str]:
    """Successive halving's selection: the top `keep` ids by `rank`."""
    return rank(scores, secondary=secondary, cost=cost)[: max(0, keep)]
