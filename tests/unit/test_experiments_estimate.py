"""The estimate of a run: an upper bound read from the plan, with a term per step."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptopt.batch.judging import judge_of
from promptopt.errors import InvalidRequest
from promptopt.experiments import plan as plans
from promptopt.experiments import schedule
from promptopt.experiments.estimate import JudgeBound, estimate_plan
from promptopt.experiments.models import OptimizerSettings, RunBudget, Schedule
from promptopt.experiments.plan import make_plan
from promptopt.llm import pricing

SPLITS = {"train": 150, "validation": 50, "test": 50}


def _estimate(plan: plans.Plan, **overrides: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "prompt_chars": 300,
        "input_chars": 900,
        "max_tokens": 256,
        "target_model": "sim:default",
        "optimizer_model": "sim:optimizer",
        "budget": RunBudget(),
    }
    args.update(overrides)
    return estimate_plan(plan, **args)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _default_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_PRICES", raising=False)
    pricing.reset()


def test_counts_tokens_and_terms_follow_the_plan() -> None:
    plan = make_plan(OptimizerSettings(), SPLITS)
    est = _estimate(plan)
    assert (est.task_calls, est.optimizer_calls) == (plan.task_calls, plan.optimizer_calls)
    assert sum(t.calls for t in est.terms) == plan.task_calls + plan.optimizer_calls
    steps = [t.step for t in est.terms]
    assert steps[0] == "baseline"
    assert steps[-3:] == ["validation", "test", "optimizer"]
    assert [s for s in steps if s.startswith("screening rung")] == [
        f"screening rung {n}" for n in range(1, len(plan.rungs) + 1)
    ]
    rung = next(t for t in est.terms if t.step == "screening rung 1")
    assert rung.formula == "4 candidates \u00d7 6 rows \u00d7 3 iterations"
    assert rung.calls == 4 * 6 * 3
    per_call = math.ceil((plans.MAX_CANDIDATE_CHARS + 900) / plans.CHARS_PER_TOKEN)
    optimizer_in = plan.optimizer_calls * plans.OPTIMIZER_PROMPT_TOKENS
    assert est.input_tokens == plan.task_calls * per_call + optimizer_in
    assert est.output_tokens == plan.task_calls * 256 + plan.optimizer_calls * plans.OPTIMIZER_MAX_TOKENS
    assert est.cost_usd == 0
    assert est.within_budget
    assert any("simulated" in note for note in est.notes)


def test_a_prompt_longer_than_any_candidate_bounds_the_tokens() -> None:
    plan = make_plan(OptimizerSettings(max_iterations=1), SPLITS)
    est = _estimate(plan, prompt_chars=30_000, input_chars=0, max_tokens=1)
    task_in = est.input_tokens - plan.optimizer_calls * plans.OPTIMIZER_PROMPT_TOKENS
    assert task_in == plan.task_calls * 10_000


def _count_calls(s: OptimizerSettings, splits: dict[str, int]) -> int:
    """An independent count of what a run evaluates at most, step by step."""
    train = max(1, splits["train"])
    validation = min(s.validation_size, splits["validation"])
    test = min(s.test_size, splits["test"])
    k, m = s.candidates_per_iteration, min(s.minibatch_size, train)
    first_rows = m
    per_iteration = 0
    while True:
        per_iteration += k * m
        if k <= plans.SURVIVORS:
            break
        k, m = (k + 1) // 2, min(2 * m, train)
    per_iteration += min(plans.VALIDATED, k) * validation  # the first look's rows are among these
    return (validation + first_rows) + s.max_iterations * per_iteration + 2 * test


@settings(max_examples=200, deadline=None)
@given(
    iterations=st.integers(1, 50),
    candidates=st.integers(1, 16),
    minibatch=st.integers(2, 200),
    validation_size=st.integers(5, 2000),
    test_size=st.integers(5, 2000),
    train=st.integers(1, 5000),
    validation=st.integers(1, 5000),
    test=st.integers(1, 5000),
)
def test_the_estimate_is_never_below_what_a_run_evaluates(
    iterations: int,
    candidates: int,
    minibatch: int,
    validation_size: int,
    test_size: int,
    train: int,
    validation: int,
    test: int,
) -> None:
    s = OptimizerSettings(
        max_iterations=iterations,
        candidates_per_iteration=candidates,
        minibatch_size=minibatch,
        validation_size=validation_size,
        test_size=test_size,
    )
    splits = {"train": train, "validation": validation, "test": test}
    est = _estimate(make_plan(s, splits))
    assert est.task_calls >= _count_calls(s, splits)
    assert est.optimizer_calls >= iterations * candidates
    assert sum(t.calls for t in est.terms) == est.task_calls + est.optimizer_calls


def test_figures_grow_with_iterations_and_candidates() -> None:
    small = _estimate(make_plan(OptimizerSettings(max_iterations=2, candidates_per_iteration=2), SPLITS))
    more_its = _estimate(make_plan(OptimizerSettings(max_iterations=6, candidates_per_iteration=2), SPLITS))
    more_cands = _estimate(make_plan(OptimizerSettings(max_iterations=2, candidates_per_iteration=8), SPLITS))
    for bigger in (more_its, more_cands):
        assert bigger.task_calls > small.task_calls
        assert bigger.optimizer_calls > small.optimizer_calls
        assert bigger.input_tokens > small.input_tokens


def test_cost_comes_from_the_price_table_rounded_up() -> None:
    plan = make_plan(OptimizerSettings(max_iterations=1, candidates_per_iteration=2), SPLITS)
    est = _estimate(plan, target_model="gemini:gemini-2.5-flash", optimizer_model="gemini:gemini-2.5-pro")
    per_call = math.ceil((plans.MAX_CANDIDATE_CHARS + 900) / plans.CHARS_PER_TOKEN)
    prices = pricing.DEFAULT_PRICES
    flash, pro = prices["gemini:gemini-2.5-flash"], prices["gemini:gemini-2.5-pro"]
    exact = (
        plan.task_calls * (per_call * flash.input_per_m + 256 * flash.output_per_m)
        + plan.optimizer_calls
        * (plans.OPTIMIZER_PROMPT_TOKENS * pro.input_per_m + plans.OPTIMIZER_MAX_TOKENS * pro.output_per_m)
    ) / 1e6
    assert exact <= est.cost_usd < exact + 1e-6
    assert not any("simulated" in note for note in est.notes)


def test_within_budget_compares_every_limit() -> None:
    plan = make_plan(OptimizerSettings(), SPLITS)
    base = _estimate(plan, target_model="gemini:gemini-2.5-flash", optimizer_model="gemini:gemini-2.5-flash")
    calls = base.task_calls + base.optimizer_calls
    tokens = base.input_tokens + base.output_tokens

    def fits(**budget: float) -> bool:
        return _estimate(
            plan,
            target_model="gemini:gemini-2.5-flash",
            optimizer_model="gemini:gemini-2.5-flash",
            budget=RunBudget.model_validate(budget),
        ).within_budget

    assert fits(max_calls=calls, max_tokens=tokens, max_cost_usd=base.cost_usd)
    assert not fits(max_calls=calls - 1)
    assert not fits(max_tokens=tokens - 1)
    assert not fits(max_cost_usd=base.cost_usd / 2)


def test_an_unpriced_model_is_noted() -> None:
    est = _estimate(make_plan(OptimizerSettings(), SPLITS), target_model="openai:my-model")
    assert any("no price is configured for openai:my-model" in note for note in est.notes)


def test_a_regression_run_evaluates_its_prompt_on_one_split() -> None:
    plan = make_plan(OptimizerSettings(), SPLITS, mode="regression", report_split="validation")
    est = _estimate(plan, prompt_chars=300, input_chars=900)
    assert (est.task_calls, est.optimizer_calls) == (50, 0)
    assert [(t.step, t.calls) for t in est.terms] == [("regression", 50)]
    assert est.input_tokens == 50 * math.ceil(1200 / plans.CHARS_PER_TOKEN)


def _judge(**params: object) -> JudgeBound:
    return JudgeBound(judge=judge_of("llm_judge", params), input_chars=120, reference_chars=40)


def test_a_judge_adds_one_call_per_task_call_with_its_term() -> None:
    plan = make_plan(OptimizerSettings(max_iterations=2), SPLITS)
    without = _estimate(plan, target_model="gemini:gemini-2.5-flash")
    bound = _judge(model="gemini:gemini-2.5-flash", max_tokens=64)
    est = _estimate(plan, target_model="gemini:gemini-2.5-flash", judges=[bound])
    assert (est.task_calls, est.optimizer_calls, est.judge_calls) == (
        plan.task_calls,
        plan.optimizer_calls,
        plan.task_calls,
    )
    term = est.terms[-1]
    assert (term.step, term.calls) == ("judge (llm_judge, gemini:gemini-2.5-flash)", plan.task_calls)
    per_call = bound.prompt_tokens(256)
    assert f"{per_call} tokens in, 64 out" in term.formula
    assert est.input_tokens == without.input_tokens + plan.task_calls * per_call
    assert est.output_tokens == without.output_tokens + plan.task_calls * 64
    assert est.cost_usd > without.cost_usd
    assert sum(t.calls for t in est.terms) == est.task_calls + est.optimizer_calls + est.judge_calls
    calls = est.task_calls + est.optimizer_calls + est.judge_calls
    budget = RunBudget(max_calls=calls - 1)
    assert not _estimate(plan, judges=[bound], budget=budget).within_budget
    assert _estimate(plan, judges=[bound], budget=RunBudget(max_calls=calls)).within_budget


@settings(max_examples=100, deadline=None)
@given(
    inputs=st.dictionaries(st.sampled_from(["question", "context", "q"]), st.text(max_size=300), min_size=1),
    reference=st.text(max_size=300),
    answer_tokens=st.integers(1, 100),
    long=st.booleans(),
)
def test_a_judge_request_never_holds_more_than_its_bound(
    inputs: dict[str, str], reference: str, answer_tokens: int, long: bool
) -> None:
    from promptopt.batch.judging import max_prompt_chars, question, request
    from promptopt.spend.estimate import MAX_CHARS_PER_TOKEN

    if long:  # far past the cut: the judge is shown at most MAX_SHOWN_CHARS of each text
        inputs = {name: value * 100 + "</input>" * 3000 for name, value in inputs.items()}
        reference += "</reference>" * 2000
    judge = judge_of("llm_judge", {"model": "sim:default", "rubric": "Grade it."})
    answer = "</response>" * answer_tokens  # a long "token": at most MAX_CHARS_PER_TOKEN characters
    sent = request(judge, inputs, reference, answer[: answer_tokens * MAX_CHARS_PER_TOKEN], timeout_s=5)
    bound = max_prompt_chars(
        judge,
        input_chars=len(question({n: "x" * len(v) for n, v in inputs.items()})),
        reference_chars=len(reference),
        answer_chars=answer_tokens * MAX_CHARS_PER_TOKEN,
    )
    assert len(sent.system_prompt) + len(sent.user_prompt) <= bound


def test_plan_notes_reach_the_estimate() -> None:
    plan = make_plan(OptimizerSettings(minibatch_size=50), {"train": 10, "validation": 5, "test": 5})
    assert any("minibatch_size 50 capped" in note for note in _estimate(plan).notes)


# --- schedules -----------------------------------------------------------------------------------


def test_next_run_is_computed_in_the_zone_and_stored_in_utc() -> None:
    after = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # Friday; Paris moves to summer time on Sunday 29th
    weekly = Schedule(cron="0 9 * * 1", time_zone="Europe/Paris")
    assert schedule.next_run_at(weekly, after=after) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert schedule.next_run_at(weekly.model_copy(update={"enabled": False}), after=after) is None
    assert schedule.next_run_at(None) is None


@pytest.mark.parametrize(
    ("cron", "zone"),
    [
        ("0 9 * * 1", "Mars/Olympus"),
        ("0 9 * * 1", "../etc/passwd"),
        ("0 9 * * 1 2026", "Etc/UTC"),
        ("61 9 * * 1", "Etc/UTC"),
        ("every monday", "Etc/UTC"),
        ("0 0 31 2 *", "Etc/UTC"),
    ],
)
def test_bad_schedules_are_invalid_schedule(cron: str, zone: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        schedule.validate(Schedule.model_construct(cron=cron, time_zone=zone, enabled=True))
    assert caught.value.code == "invalid_schedule"
