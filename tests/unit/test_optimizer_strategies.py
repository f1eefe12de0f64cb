"""Strategy per candidate slot, and the `auto` bandit that spends slots where gains come from."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from promptopt.experiments.strategies import ARMS, Bandit, assign, strategy_for


def test_every_arm_is_tried_first_then_choices_repeat_deterministically() -> None:
    bandit = Bandit()
    first = [bandit.choose(random.Random(i)) for i in range(len(ARMS))]
    assert sorted(first) == sorted(ARMS)
    state = bandit.to_dict()
    a, b = Bandit.from_dict(state), Bandit.from_dict(state)
    assert [a.choose(random.Random(9)) for _ in range(5)] == [b.choose(random.Random(9)) for _ in range(5)]


def test_round_trip_through_json() -> None:
    bandit = Bandit()
    rng = random.Random(1)
    for _ in range(4):
        bandit.update(bandit.choose(rng), gain=0.1, calls=40)
    restored = Bandit.from_dict(json.loads(json.dumps(bandit.to_dict())))
    assert restored == bandit
    assert restored.to_dict() == bandit.to_dict()
    with pytest.raises(ValueError, match="arms"):
        Bandit.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="bad state"):
        Bandit.from_dict({"arms": {"fewshot": {"calls": "many"}}})


def test_the_bandit_prefers_the_arm_that_pays() -> None:
    bandit = Bandit()
    rng = random.Random(0)
    picks: Counter[str] = Counter()
    for _ in range(60):
        arm = bandit.choose(rng)
        picks[arm] += 1
        bandit.update(arm, gain=0.2 if arm == "history" else 0.0, calls=50)
    assert picks.most_common(1)[0][0] == "history", picks
    assert picks["history"] > 30, picks
    assert min(picks.values()) >= 2, picks  # the others are still explored now and then


def test_gain_per_call_counts_not_gain_alone() -> None:
    bandit = Bandit()
    rng = random.Random(3)
    picks: Counter[str] = Counter()
    for _ in range(60):
        arm = bandit.choose(rng)
        picks[arm] += 1
        # reflective gains twice as much per candidate but costs ten times the calls.
        gain, calls = {"reflective": (0.2, 500), "fewshot": (0.1, 50)}.get(arm, (0.0, 50))
        bandit.update(arm, gain=gain, calls=calls)
    assert picks["fewshot"] > picks["reflective"], picks


def test_strategy_for_fixed_and_auto() -> None:
    rng = random.Random(0)
    for fixed in ("reflective", "history", "fewshot", "random"):
        assert strategy_for(fixed, 3, None, rng) == fixed
    assert [strategy_for("auto", i, None, rng) for i in range(4)] == [*ARMS, ARMS[0]]
    bandit = Bandit()
    slots = [strategy_for("auto", i, bandit, rng) for i in range(3)]
    assert sorted(slots) == sorted(ARMS)  # the parallel slots of one iteration spread over arms
    with pytest.raises(ValueError, match="unknown"):
        strategy_for("genetic", 0, bandit, rng)
    with pytest.raises(ValueError, match="unknown arm"):
        bandit.update("random", 0.1, 1)


def test_no_arm_takes_more_than_half_of_an_iteration() -> None:
    rng = random.Random(0)
    bandit = Bandit()
    for arm in ARMS:  # history has won by far: the bandit alone would give it every slot
        bandit.choose(rng)
        bandit.update(arm, gain=0.3 if arm == "history" else 0.0, calls=1)
    assert [bandit.choose(random.Random(i)) for i in range(3)] == ["history"] * 3
    for slots in (2, 4, 5, 8):
        chosen = assign("auto", slots, Bandit.from_dict(bandit.to_dict()), random.Random(1))
        assert len(chosen) == slots
        assert chosen.count("history") == -(-slots // 2), chosen
        assert len(set(chosen)) >= 2
    assert assign("reflective", 3, None, rng) == ["reflective"] * 3
    assert assign("auto", 4, None, rng) == [*ARMS, ARMS[0]]
