"""On the bundled datasets, a better prompt makes the simulator score higher (promptopt.local.sim_bench).

The simulator is deterministic, so these figures never change unless its rules do; the
landscape is drawn per seed (the simulator's name), so the assertions are on orderings and
margins (with non-overlapping 95% intervals) that hold for any seed, not on one seed's values.
"""

from __future__ import annotations

import pytest

from promptopt.evaluation import MetricResult
from promptopt.llm.sim import landscape as sim_landscape
from promptopt.local.sim_bench import PROMPTS, load, main, score, template

MODELS = ("sim:default", "sim:other")


def scores(name: str, model: str) -> dict[str, MetricResult]:
    dataset = load(name)
    return {prompt: score(dataset, template(dataset, prompt), model) for prompt in PROMPTS}


def above(low: MetricResult, high: MetricResult, margin: float) -> bool:
    """`high` beats `low` by `margin` in the mean and their intervals do not overlap."""
    return high.mean - low.mean >= margin and high.ci_low > low.ci_high


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", ["bbh/boolean_expressions", "bbh/navigate", "bbh/web_of_lies"])
def test_exact_answers_need_the_format_then_reasoning_with_a_final_answer(name: str, model: str) -> None:
    found = scores(name, model)
    assert found["bare"].mean == 0.0  # it rambles, exact_match never matches
    assert above(found["bare"], found["format"], 0.2), found
    if name == "bbh/boolean_expressions":  # one step: one-shot slips are rarer, reasoning gains less
        assert found["steps+final+format"].mean - found["format"].mean >= 0.05, found
    else:
        assert above(found["format"], found["steps+final+format"], 0.1), found
    assert found["steps+format"].mean < found["steps+final+format"].mean, found
    dataset = load(name)
    best = sim_landscape.best(name.split("/")[1], model.removeprefix("sim:"), dataset.inputs, dataset.metric)
    assert found["steps+final+format"].mean < best.score < 1.0  # somewhere left to climb


@pytest.mark.parametrize("model", MODELS)
def test_counting_gains_from_steps_with_a_final_line(model: str) -> None:
    found = scores("bbh/object_counting", model)
    assert above(found["bare"], found["steps+final+format"], 0.3), found
    assert found["steps+final+format"].mean <= 1.0


def test_gsm8k_sample_step_by_step_gets_a_share_right() -> None:
    found = scores("gsm8k/test-300", "sim:default")
    best_other = max(found["bare"].mean, found["format"].mean)
    assert found["steps+format"].mean >= 0.04, found  # number words and the left-to-right rule
    assert found["steps+format"].mean - best_other >= 0.03, found
    assert found["steps+format"].ci_low > found["format"].ci_high, found
    assert found["steps+format"].mean <= 0.3, found  # a simulator, not a solver


def test_tasks_it_cannot_do_stay_at_chance() -> None:
    sports = scores("bbh/sports_understanding", "sim:default")
    assert sports["bare"].mean == 0.0
    assert 0.35 <= sports["format"].mean <= 0.65  # a guess in the stated words
    dates = scores("bbh/date_understanding", "sim:default")
    assert all(result.mean <= 0.35 for result in dates.values())


def test_the_table_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bbh/navigate"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out
    assert "not a language model" in out
    assert "| bbh/navigate (exact_match, 250) | 0.000 [" in out
    assert "(format, delimiter, reasoning" in out
