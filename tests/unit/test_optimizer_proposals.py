"""The optimizer's request (fits its budget, shows only the context) and the checks on its reply."""

from __future__ import annotations

import json
import random

import pytest

from promptopt.experiments import plan
from promptopt.experiments.proposals import (
    Example,
    PromptText,
    Proposal,
    ProposalContext,
    Rejected,
    build_request,
    estimate_tokens,
    fewshot,
    parse_reply,
)
from promptopt.prompts.templates import placeholders, render

PARENT = PromptText("You solve puzzles.", "Question: {question}\nContext: {context}")


def example(row: int, output: str = "It is probably 7, or so.", score: float = 0.0) -> Example:
    return Example(
        row=row,
        inputs={"question": f"question-{row} how many?", "context": f"context-{row}"},
        output=output,
        reference=f"answer-{row}",
        score=score,
    )


def context(strategy: str = "reflective", **changes: object) -> ProposalContext:
    ctx = ProposalContext(
        strategy=strategy,
        parent=PARENT,
        parent_id="c001_02",
        placeholders=["question", "context"],
        failures=[example(r) for r in range(12)],
        successes=[example(r, output=f"answer-{r}", score=1.0) for r in range(20, 26)],
        history=[(PARENT, 0.4), (PromptText("", "{question} {context} Be brief."), 0.55)],
        metric="exact_match",
        seed=3,
        index=1,
    )
    for key, value in changes.items():
        setattr(ctx, key, value)
    return ctx


def reply(system: str = "You solve puzzles carefully.", output: str | None = None, **extra: object) -> str:
    body = {"critique": "too vague", "system_prompt": system, "output_prompt": output or PARENT.output_prompt}
    body.update(extra)
    return json.dumps(body)


def request_tokens(ctx: ProposalContext, **kwargs: int) -> tuple[str, int]:
    request = build_request(ctx, model="sim:optimizer", **kwargs)
    assert request is not None
    return request.user_prompt, estimate_tokens(request.system_prompt + "\n" + request.user_prompt)


def shown_examples(user_prompt: str) -> list[dict[str, object]]:
    body = user_prompt.split("<examples>\n", 1)[1].split("\n</examples>", 1)[0]
    return [json.loads(line) for line in body.splitlines()]


def test_reflective_request_shows_the_parent_a_minibatch_of_failures_and_the_placeholders() -> None:
    ctx = context()
    request = build_request(ctx, model="sim:optimizer")
    assert request is not None
    assert request.response_schema is not None
    assert set(request.response_schema["required"]) == {"critique", "system_prompt", "output_prompt"}
    assert "{question}, {context}" in request.user_prompt
    assert json.dumps(PARENT.output_prompt) in request.user_prompt
    shown = shown_examples(request.user_prompt)
    assert 1 <= len(shown) <= 5
    rows = [e["row"] for e in shown]
    failures = {e.row: e for e in ctx.failures}
    for item in shown:
        original = failures[item["row"]]  # type: ignore[index]
        assert item["output"] == original.output
        assert item["reference"] == original.reference
        assert item["inputs"] == original.inputs
    # Successes are not failures: none of them is shown to a reflective call.
    assert "answer-20" not in request.user_prompt
    # Another slot sees another minibatch; the same slot always the same one.
    other, _ = request_tokens(context(index=2))
    assert [e["row"] for e in shown_examples(other)] != rows
    assert build_request(context(), model="sim:optimizer") == request


def test_request_never_holds_text_outside_the_context() -> None:
    ctx = context(failures=[example(1)], successes=[], history=[])
    user, _ = request_tokens(ctx)
    allowed = {"question-1 how many?", "context-1", "It is probably 7, or so.", "answer-1"}
    shown = shown_examples(user)
    assert len(shown) == 1
    values = {*shown[0]["inputs"].values(), shown[0]["output"], shown[0]["reference"]}  # type: ignore[union-attr]
    assert values == allowed
    assert "answer-2" not in user
    assert "question-2" not in user


def test_a_one_megabyte_row_cannot_blow_the_budget() -> None:
    huge = "x" * 1_000_000 + "\u00e9\u4e2d" * 100_000
    failures = [
        Example(row=r, inputs={"question": huge, "context": huge}, output=huge, reference=huge, score=0.0)
        for r in range(8)
    ]
    ctx = context(failures=failures)
    user, tokens = request_tokens(ctx)
    assert tokens <= plan.OPTIMIZER_PROMPT_TOKENS
    assert "Placeholders to keep exactly" in user  # the instructions stay
    assert shown_examples(user), "cut fields, not every failure"
    small_user, small_tokens = request_tokens(ctx, token_budget=1_500)
    assert small_tokens <= 1_500
    assert "Placeholders to keep exactly" in small_user


def test_history_request_shows_scored_prompts_worst_first_and_random_shows_no_rows() -> None:
    user, tokens = request_tokens(context("history"))
    assert tokens <= plan.OPTIMIZER_PROMPT_TOKENS
    body = user.split("<history>\n", 1)[1].split("\n</history>", 1)[0].splitlines()
    assert [json.loads(line)["score"] for line in body] == [0.4, 0.55]
    assert "<examples>" not in user
    random_user, _ = request_tokens(context("random"))
    assert "<examples>" not in random_user
    assert "<history>" not in random_user
    assert "question-" not in random_user
    assert build_request(context("fewshot"), model="sim:optimizer") is None
    with pytest.raises(ValueError, match="unknown strategy"):
        build_request(context("auto"), model="sim:optimizer")


def test_parse_reply_accepts_a_valid_rewrite_in_a_fence() -> None:
    ctx = context()
    output = "Think first.\nQuestion: {question}\nContext: {context}\nUse {{braces}} literally."
    found = parse_reply("```json\n" + reply(output=output) + "\n```", ctx)
    assert isinstance(found, Proposal)
    assert found.prompt == PromptText("You solve puzzles carefully.", output)
    assert found.strategy == "reflective"
    assert found.critique == "too vague"
    request = build_request(ctx, model="sim:optimizer")
    assert request is not None
    assert found.shown_rows == [e["row"] for e in shown_examples(request.user_prompt)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I would rewrite it as follows: be clearer.", "not_json"),
        ("[1, 2, 3]", "not_json"),
        (json.dumps({"system_prompt": 3, "output_prompt": "{question}{context}"}), "not_json"),
        (reply(output="Question: {question}"), "placeholders_changed"),  # dropped {context}
        (reply(output="{question} {context} {answer}"), "placeholders_changed"),  # added one
        (reply(output="{question} {context} {oops"), "placeholders_changed"),  # does not parse
        (reply(output="{question.upper} {context}"), "placeholders_changed"),
        (reply(output="   "), "empty"),
        (reply(output="{question} {context}" + "y" * plan.MAX_CANDIDATE_CHARS), "oversized"),
        ("z" * 1_000_000, "oversized"),
        (reply(output="{question}{context}" + "w" * 1_000_000), "oversized"),
        (reply(system=PARENT.system_prompt), "unchanged"),
        (
            reply(system=" You  solve puzzles. ", output="Question: {question}\n Context: {context}"),
            "unchanged",
        ),
    ],
)
def test_parse_reply_rejects_garbage_without_raising(text: str, reason: str) -> None:
    found = parse_reply(text, context())
    assert isinstance(found, Rejected), found
    assert found.reason == reason


def test_fewshot_adds_escaped_demonstrations_and_keeps_the_placeholders() -> None:
    successes = [
        Example(
            row=30 + i,
            inputs={"question": f"what is {{x}} in set {{{i}}}?", "context": "c"},
            output=f"answer {{{i}}}",
            reference=None,
            score=1.0,
        )
        for i in range(5)
    ]
    ctx = context("fewshot", successes=successes, max_demos=3)
    found = fewshot(ctx, random.Random(0))
    assert isinstance(found, Proposal)
    assert placeholders(found.prompt.output_prompt) == placeholders(PARENT.output_prompt)
    assert len(found.shown_rows) == 3
    assert set(found.shown_rows) <= {30, 31, 32, 33, 34}
    rendered = render(found.prompt.output_prompt, {"question": "Q?", "context": "C"})
    for row in found.shown_rows:
        i = row - 30
        assert f"what is {{x}} in set {{{i}}}?" in rendered  # the braces come out literally
        assert f"answer {{{i}}}" in rendered
    assert rendered.endswith("Question: Q?\nContext: C")
    assert fewshot(ctx, random.Random(0)) == found
    assert fewshot(ctx, random.Random(1)).shown_rows != found.shown_rows  # type: ignore[union-attr]
    # A fewshot parent gets its demonstrations replaced, not stacked.
    again = fewshot(context("fewshot", parent=found.prompt, successes=successes), random.Random(5))
    assert isinstance(again, Proposal)
    assert again.prompt.output_prompt.count("Worked examples:") == 1
    assert isinstance(fewshot(context("fewshot", successes=[]), random.Random(0)), Rejected)
