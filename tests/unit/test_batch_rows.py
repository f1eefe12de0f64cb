"""A row's model call: classification of every failure, budget allowance, cache keys, schemas."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from promptopt.batch import budget, cache, calls
from promptopt.batch.models import BatchCreate, EvaluationCreate
from promptopt.batch.writer import ChunkTotals
from promptopt.llm import types
from promptopt.llm.sim.provider import SimProvider

REQUEST = types.CompletionRequest(user_prompt="What is 2 + 3?")


class Raising:
    model = "sim:raising"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def complete(self, request: types.CompletionRequest) -> types.Completion:
        raise self.error


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (types.RetryableModelError("busy", status=429), "retryable", "model_busy"),
        (types.ModelBlockedError("no", reason="SAFETY"), "permanent", "model_blocked"),
        (types.ModelRequestError("bad", status=400), "permanent", "model_rejected_request"),
        (types.EmptyResponseError("empty"), "permanent", "model_bad_response"),
        (types.MalformedResponseError("junk"), "permanent", "model_bad_response"),
        (types.ModelConfigError("openai:x: no API key"), "permanent", "model_not_configured"),
        (types.ModelConfigError("invalid model id 'x'"), "permanent", "unknown_model"),
        (types.ModelRequestError("gone", status=404), "permanent", "unknown_model"),
        (types.ModelError("other"), "permanent", "model_bad_response"),
        (RuntimeError("a bug or a dropped connection"), "retryable", "internal"),
    ],
)
def test_failures_are_classified_by_what_the_chunk_should_do(error: Exception, kind: str, code: str) -> None:
    outcome = calls.call(Raising(error), REQUEST)
    assert (outcome.kind, outcome.code) == (kind, code)
    assert "2 + 3" not in outcome.message  # never the prompt


def test_a_successful_call_carries_its_completion() -> None:
    outcome = calls.call(SimProvider(), REQUEST)
    assert outcome.kind == "ok"
    assert outcome.completion is not None
    assert "5" in outcome.completion.text


def test_base_exceptions_are_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        calls.call(Raising(KeyboardInterrupt()), REQUEST)


def _totals(calls_: int = 0, tokens: int = 0, cost: float = 0.0) -> ChunkTotals:
    return ChunkTotals(calls=calls_, input_tokens=tokens, cost_usd=cost)


S = budget.Spent


@pytest.mark.parametrize(
    ("limits", "job", "own_record", "own_done", "wanted", "expected"),
    [
        ({}, S(calls=10**6), S(), _totals(), 50, (50, None)),
        ({"max_calls": 100}, S(calls=40, reserved_calls=20), S(), _totals(), 50, (40, "max_calls")),
        ({"max_calls": 100}, S(calls=40), S(), _totals(), 50, (50, None)),
        ({"max_calls": 100}, S(calls=100), S(), _totals(), 5, (0, "max_calls")),
        # A crashed attempt of this very chunk left a stale reservation and wrote 10 results.
        (
            {"max_calls": 100},
            S(calls=40, reserved_calls=30),
            S(reserved_calls=30),
            _totals(10),
            50,
            (50, None),
        ),
        ({"max_tokens": 1000}, S(tokens=999), S(), _totals(tokens=1), 5, (0, "max_tokens")),
        ({"max_cost_usd": 1.0}, S(cost_usd=0.5), S(), _totals(cost=0.4), 5, (5, None)),
        ({"max_cost_usd": 1.0}, S(cost_usd=0.6), S(), _totals(cost=0.4), 5, (0, "max_cost_usd")),
    ],
)
def test_budget_allowance(
    limits: dict[str, Any],
    job: budget.Spent,
    own_record: budget.Spent,
    own_done: ChunkTotals,
    wanted: int,
    expected: tuple[int, str | None],
) -> None:
    assert budget.allowance(limits, job, own_record, own_done, wanted) == expected


def test_cache_key_covers_model_parameters_and_messages() -> None:
    base = cache.key("sim:a", REQUEST)
    assert base == cache.key("sim:a", types.CompletionRequest(user_prompt="What is 2 + 3?", timeout_s=5))
    variants = [
        cache.key("sim:b", REQUEST),
        cache.key("sim:a", types.CompletionRequest(user_prompt="What is 2 + 4?")),
        cache.key("sim:a", types.CompletionRequest(user_prompt="What is 2 + 3?", system_prompt="Be brief.")),
        cache.key("sim:a", types.CompletionRequest(user_prompt="What is 2 + 3?", temperature=0.5)),
        cache.key("sim:a", types.CompletionRequest(user_prompt="What is 2 + 3?", max_tokens=5)),
        cache.key(
            "sim:a", types.CompletionRequest(user_prompt="What is 2 + 3?", response_schema={"type": "object"})
        ),
    ]
    assert len({base, *variants}) == 7


INLINE = {"output_prompt": "Q: {question}", "rows": [{"inputs": {"question": "1 + 1"}, "reference": "2"}]}


@pytest.mark.parametrize(
    "body",
    [
        {"rows": INLINE["rows"]},
        {**INLINE, "prompt_id": "pr_1"},
        {"system_prompt": "x", "rows": INLINE["rows"]},
        {**INLINE, "version": 2},
        {**INLINE, "dataset": {"dataset_id": "ds_1"}},
        {"output_prompt": "Q: {question}"},
        {**INLINE, "rows": []},
        {**INLINE, "budget": {"max_calls": 0}},
        {**INLINE, "concurrency": 65},
        {**INLINE, "surprise": True},
    ],
)
def test_batch_create_refuses_ambiguous_or_empty_requests(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BatchCreate.model_validate(body)


def test_evaluation_create_needs_distinct_metrics() -> None:
    assert (
        EvaluationCreate.model_validate({**INLINE, "metrics": [{"name": "numeric"}]}).metrics[0].name
        == "numeric"
    )
    with pytest.raises(ValidationError, match="repeated"):
        EvaluationCreate.model_validate({**INLINE, "metrics": [{"name": "numeric"}, {"name": "numeric"}]})
    with pytest.raises(ValidationError):
        EvaluationCreate.model_validate({**INLINE, "metrics": []})
