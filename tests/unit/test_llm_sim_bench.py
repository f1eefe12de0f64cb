"""On the bundled datasets, a better prompt makes the simulator score higher (promptopt.local.sim_bench).

The simulator is deterministic, so these figures never change unless its rules do; the assertions
are on the ordering and on margins (with non-overlapping 95% intervals), not on exact values.
"""

from __future__ import annotations

import pytest

from promptopt.evaluation import MetricResult
from promptopt.local.sim_bench import PROMPTS, load, main, score, template


def scores(name: str) -> dict[str, MetricResult]:
    dataset = load(name)
    return {prompt: score(dataset, template(dataset, prompt)) for prompt in PROMPTS}


def above(low: MetricResult, high: MetricResult, margin: float) -> bool:
    """`high` beats `low` by `margin` in the mean and their intervals do not overlap."""
    return high.mean - low.mean >= margin and high.ci_low > low.ci_high


def test_boolean_expressions_needs_only_the_format() -> None:
    found = scores("bbh/boolean_expressions")
    assert found["bare"].mean == 0.0  # it rambles, exact_match never matches
    assert above(found["bare"], found["format"], 0.9)
    assert found["steps+format"].mean >= found["format"].mean


@pytest.mark.parametrize("name", ["bbh/navigate", "bbh/web_of_lies", "bbh/object_counting"])
def test_multi_step_families_gain_from_the_format_then_from_step_by_step(name: str) -> None:
    found = scores(name)
    assert above(found["bare"], found["format"], 0.2), found
    assert 0.4 <= found["format"].mean <= 0.7, found  # one shot: right a little over half the time
    assert above(found["format"], found["steps+format"], 0.25), found
    assert found["steps+format"].mean >= 0.95


def test_gsm8k_sample_step_by_step_gets_a_share_right() -> None:
    found = scores("gsm8k/test-300")
    best_other = max(found["bare"].mean, found["format"].mean)
    assert found["steps+format"].mean >= 0.04, found  # number words and the left-to-right rule
    assert found["steps+format"].mean - best_other >= 0.03, found
    assert found["steps+format"].ci_low > found["format"].ci_high, found
    assert found["steps+format"].mean <= 0.3, found  # a simulator, not a solver


def test_tasks_it_cannot_do_stay_at_chance() -> None:
    sports = scores("bbh/sports_understanding")
    assert sports["bare"].mean == 0.0
    assert 0.35 <= sports["format"].mean <= 0.65  # a guess in the stated words
    dates = scores("bbh/date_understanding")
    assert all(result.mean <= 0.35 for result in dates.values())


def test_the_table_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bbh/navigate"]) == 0
    out = capsys.readouterr().out
    assert "not a language model" in out
    assert "| bbh/navigate (exact_match, 250) | 0.000 [" in out
