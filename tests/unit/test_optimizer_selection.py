"""Paired lifts, acceptance, GEPA's Pareto front, parent draws and successive halving's keep."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from promptopt.experiments.selection import (
    Lift,
    accepts,
    keep_best,
    paired_lift,
    pareto_front,
    pick_parents,
    rank,
)


def noisy_pair(n: int, seed: int, extra: int = 0) -> tuple[list[float], list[float]]:
    """Equally good prompts: the candidate fixes n/10 (+ extra) of the incumbent's failures, breaks n/10."""
    rng = random.Random(seed)
    incumbent = [float(i % 2) for i in range(n)]
    rng.shuffle(incumbent)
    candidate = list(incumbent)
    fixed = rng.sample([i for i, s in enumerate(incumbent) if s == 0.0], n // 10 + extra)
    broken = rng.sample([i for i, s in enumerate(incumbent) if s == 1.0], n // 10)
    for i in fixed:
        candidate[i] = 1.0
    for i in broken:
        candidate[i] = 0.0
    return candidate, incumbent


def test_identical_scores_give_a_zero_lift_that_is_not_accepted() -> None:
    scores = [1.0, 0.0, 1.0, 1.0, 0.0] * 20
    lift = paired_lift(scores, scores)
    assert lift == Lift(0.0, 0.0, 0.0, 100)
    assert not accepts(lift, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_noise_gives_a_ci_covering_zero_and_is_rejected(seed: int) -> None:
    candidate, incumbent = noisy_pair(100, seed)
    lift = paired_lift(candidate, incumbent, seed=seed)
    assert lift.ci_low < 0.0 < lift.ci_high, lift
    assert not accepts(lift, 0.0)


def test_a_small_positive_mean_within_noise_is_rejected() -> None:
    candidate, incumbent = noisy_pair(100, 6, extra=2)
    lift = paired_lift(candidate, incumbent)
    assert lift.mean == pytest.approx(0.02)
    assert lift.ci_low < 0.0 < lift.ci_high
    assert not accepts(lift, 0.0)


def test_a_clear_improvement_excludes_zero_and_is_accepted() -> None:
    rng = random.Random(1)
    incumbent = [float(rng.random() < 0.5) for _ in range(100)]
    candidate = [1.0 if rng.random() < 0.6 else s for s in incumbent]  # fixes most failures
    lift = paired_lift(candidate, incumbent)
    assert lift.mean > 0.2
    assert 0.0 < lift.ci_low < lift.mean < lift.ci_high
    assert accepts(lift, 0.0)
    assert not accepts(lift, lift.ci_low)  # the bound must clear min_improvement, not touch it
    assert not accepts(paired_lift(incumbent, candidate), 0.0)  # the other way round is a loss


def test_paired_lift_is_seeded_needs_paired_rows_and_handles_no_rows() -> None:
    candidate, incumbent = noisy_pair(60, 3)
    assert paired_lift(candidate, incumbent, seed=4) == paired_lift(candidate, incumbent, seed=4)
    with pytest.raises(ValueError, match="same rows"):
        paired_lift([1.0, 0.0], [1.0])
    empty = paired_lift([], [])
    assert empty.n == 0
    assert not accepts(empty, 0.0)


def test_paired_lift_on_many_rows_uses_the_general_path() -> None:
    rng = random.Random(2)
    incumbent = [rng.random() for _ in range(400)]
    candidate = [min(1.0, s + 0.1) for s in incumbent]
    lift = paired_lift(candidate, incumbent, resamples=300)
    assert 0.0 < lift.ci_low <= lift.mean <= lift.ci_high < 0.11


def test_paired_lift_is_fast_on_200_rows() -> None:
    candidate, incumbent = noisy_pair(200, 5)
    paired_lift(candidate, incumbent)  # warm up
    started = time.perf_counter()
    for seed in range(5):
        paired_lift(candidate, incumbent, seed=seed)
    per_call = (time.perf_counter() - started) / 5
    assert per_call < 0.1, per_call


def test_pareto_front_keeps_row_winners_and_drops_dominated_candidates() -> None:
    scores = {
        "a": [1.0, 0.0, 1.0, 0.0, 0.0],  # best on rows 0 and 2 (row 2 tied with c)
        "b": [0.0, 1.0, 0.0, 0.0, 0.0],  # alone best on row 1
        "c": [0.5, 0.0, 1.0, 0.0, 0.0],  # ties on row 2 but a is >= everywhere and > on row 0
        "d": [0.0, 0.0, 0.0, 0.0, 0.0],  # never best
        "e": [0.0, 1.0, 0.0, 0.0, 0.0],  # identical to b: neither dominates, both stay
    }
    front = pareto_front(scores)
    assert front == {"a": 2, "b": 1, "e": 1}


def test_pareto_front_ignores_all_zero_rows_and_checks_lengths() -> None:
    assert pareto_front({"a": [0.0, 0.0], "b": [0.0, 0.0]}) == {}
    assert pareto_front({"a": [0.0, 0.2], "b": [0.0, 0.4]}) == {"b": 1}
    assert pareto_front({}) == {}
    with pytest.raises(ValueError, match="same rows"):
        pareto_front({"a": [1.0], "b": [1.0, 0.0]})


def test_pick_parents_draws_in_proportion_to_rows_won() -> None:
    front = {"a": 6, "b": 3, "c": 1}
    rng = random.Random(7)
    counts = Counter(pick_parents(front, 1, rng)[0] for _ in range(10_000))
    for member, wins in front.items():
        assert abs(counts[member] / 10_000 - wins / 10) < 0.02, counts


def test_pick_parents_prefers_distinct_parents_then_repeats() -> None:
    front = {"a": 6, "b": 3, "c": 1}
    rng = random.Random(8)
    for _ in range(200):
        two = pick_parents(front, 2, rng)
        assert len(set(two)) == 2
    five = pick_parents(front, 5, rng)
    assert set(five) == {"a", "b", "c"}
    assert len(five) == 5
    assert pick_parents({}, 3, rng) == []
    assert pick_parents(front, 3, random.Random(1)) == pick_parents(front, 3, random.Random(1))


def test_rank_breaks_ties_by_secondary_then_cost_then_id() -> None:
    scores = {"d": 0.5, "c": 0.7, "b": 0.7 + 1e-12, "a": 0.7, "e": 0.9}
    assert rank(scores)[:4] == ["e", "a", "b", "c"]
    assert rank(scores, secondary={"c": 0.9, "b": 0.1, "a": 0.1})[:3] == ["e", "c", "a"]
    assert rank(scores, cost={"a": 30.0, "b": 10.0, "c": 20.0})[:4] == ["e", "b", "c", "a"]
    assert rank(scores)[-1] == "d"


def test_keep_best_keeps_the_better_half() -> None:
    scores = {"c1": 0.2, "c2": 0.9, "c3": 0.4, "c4": 0.7, "c5": 0.1, "c6": 0.8}
    assert keep_best(scores, 3) == ["c2", "c6", "c4"]
    assert keep_best(scores, 0) == []
    assert keep_best({"x": 0.5, "y": 0.5}, 1, cost={"x": 9.0, "y": 3.0}) == ["y"]
