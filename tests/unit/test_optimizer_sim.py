"""The simulated optimizer (`sim:optimizer`): deterministic, diverse, and useful on real failures."""

from __future__ import annotations

import dataclasses
import json

import pytest

from promptopt.evaluation import evaluate
from promptopt.experiments.proposals import (
    Example,
    PromptText,
    Proposal,
    ProposalContext,
    build_request,
    parse_reply,
)
from promptopt.llm import registry
from promptopt.llm.sim.optimizer import SimOptimizer
from promptopt.llm.types import CompletionRequest
from promptopt.local.sim_bench import Dataset, load
from promptopt.prompts.templates import placeholders, render

ROWS = range(20)  # the train rows the baseline is run on and its failures come from


def scores(dataset: Dataset, prompt: PromptText) -> tuple[list[str], list[float]]:
    target = registry.provider("sim:default")
    outputs = [
        target.complete(
            CompletionRequest(
                user_prompt=render(prompt.output_prompt, {dataset.column: dataset.inputs[row]}),
                system_prompt=prompt.system_prompt,
            )
        ).text
        for row in ROWS
    ]
    found, _ = evaluate("exact_match", outputs, [dataset.references[row] for row in ROWS])
    return outputs, found


def baseline_context(
    dataset: Dataset, seed: int, index: int, strategy: str = "reflective"
) -> ProposalContext:
    baseline = PromptText("", "{" + dataset.column + "}")
    outputs, found = scores(dataset, baseline)
    examples = [
        Example(row, {dataset.column: dataset.inputs[row]}, outputs[i], dataset.references[row], found[i])
        for i, row in enumerate(ROWS)
    ]
    return ProposalContext(
        strategy=strategy,
        parent=baseline,
        parent_id="c000_00",
        placeholders=[dataset.column],
        failures=[e for e in examples if e.score < 1.0],
        successes=[e for e in examples if e.score >= 1.0],
        history=[(baseline, sum(found) / len(found))],
        metric="exact_match",
        seed=seed,
        index=index,
    )


def propose(ctx: ProposalContext) -> Proposal:
    request = build_request(ctx, model="sim:optimizer")
    assert request is not None
    completion = registry.provider("sim:optimizer").complete(request)
    found = parse_reply(completion.text, ctx)
    assert isinstance(found, Proposal), found
    return found


@pytest.fixture(scope="module")
def navigate() -> Dataset:
    return load("bbh/navigate")


def test_the_registry_serves_the_simulated_optimizer_and_labels_it(navigate: Dataset) -> None:
    provider = registry.provider("sim:optimizer")
    assert isinstance(provider, SimOptimizer)
    request = build_request(baseline_context(navigate, 0, 0), model="sim:optimizer")
    assert request is not None
    completion = provider.complete(request)
    assert completion.model == "sim:optimizer"
    assert completion.cost_usd == 0.0
    assert completion.usage.input_tokens == len(f"{request.system_prompt}\n{request.user_prompt}".split())
    assert completion.usage.output_tokens == len(completion.text.split())
    assert json.loads(completion.text)["critique"].startswith("[simulated optimizer]")
    assert type(registry.provider("sim:default")).__name__ == "SimProvider"


def test_a_slow_twin_waits_then_answers_as_the_optimizer_does(
    navigate: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    import promptopt.llm.sim.optimizer as sim_optimizer

    waits: list[float] = []
    monkeypatch.setattr(sim_optimizer.time, "sleep", waits.append)
    request = build_request(baseline_context(navigate, 0, 0), model="sim:optimizer")
    assert request is not None
    slow = registry.provider("sim:optimizer@250ms")
    assert slow.complete(request).text == registry.provider("sim:optimizer").complete(request).text
    assert waits == [0.25]  # the slow twin waited once; the plain one not at all


def test_same_request_same_answer_other_slots_other_candidates(navigate: Dataset) -> None:
    provider = registry.provider("sim:optimizer")
    ctx = baseline_context(navigate, 0, 0)
    request = build_request(ctx, model="sim:optimizer")
    assert request is not None
    assert provider.complete(request).text == SimOptimizer().complete(request).text
    candidates = {
        propose(baseline_context(navigate, seed, index)).prompt for seed in (0, 1) for index in range(4)
    }
    assert len(candidates) >= 5, candidates
    for prompt in candidates:
        assert placeholders(prompt.output_prompt) == [navigate.column]
        assert "{input}" in prompt.output_prompt


def test_proposals_from_real_failures_beat_a_bare_baseline_and_search_matters(navigate: Dataset) -> None:
    baseline = PromptText("", "{" + navigate.column + "}")
    _, base_scores = scores(navigate, baseline)
    base = sum(base_scores) / len(base_scores)
    found = []
    for index in range(4):
        proposal = propose(baseline_context(navigate, 0, index))
        found.append(sum(scores(navigate, proposal.prompt)[1]) / len(ROWS))
    assert max(found) >= base + 0.3, (base, found)  # the failures showed the problem; a rewrite fixes it
    assert min(found) <= base, (base, found)  # not every proposal helps: selection has work to do


def test_a_formatted_but_one_shot_prompt_is_told_to_reason(navigate: Dataset) -> None:
    parent = PromptText("", "{input}\nAnswer with Yes or No. No preamble, nothing else.")
    outputs, found = scores(navigate, parent)
    failures = [
        Example(row, {"input": navigate.inputs[row]}, outputs[i], navigate.references[row], found[i])
        for i, row in enumerate(ROWS)
        if found[i] < 1.0
    ]
    assert failures
    critiques = []
    for index in range(4):
        ctx = ProposalContext(
            "reflective", parent, "c001_00", ["input"], failures, [], [], "exact_match", 0, index
        )
        critiques.append(propose(ctx).critique)
    assert any("reason" in c for c in critiques), critiques


def test_history_builds_on_the_best_prompt_and_random_reads_no_failures(navigate: Dataset) -> None:
    best = PromptText("", "{input}\nAnswer with Yes or No.")
    ctx = baseline_context(navigate, 0, 0, strategy="history")
    ctx.history = [(ctx.parent, 0.0), (best, 0.55)]
    proposal = propose(ctx)
    assert best.output_prompt in proposal.prompt.output_prompt
    blind = propose(baseline_context(navigate, 0, 1, strategy="random"))
    assert "No failures were shown" in blind.critique
    assert blind.shown_rows == []


def test_a_rewrite_never_repeats_a_line_the_parent_has(navigate: Dataset) -> None:
    repeated = 0
    for seed in range(30):
        ctx = baseline_context(navigate, seed, seed % 4)
        for generation in range(3):  # rewrite the rewrite: later moves meet lines already there
            reply = propose(ctx)
            lines = [x for x in f"{reply.prompt.system_prompt}\n{reply.prompt.output_prompt}".split("\n")]
            lines = [x for x in lines if x.strip()]
            repeated += len(lines) - len(set(lines))
            ctx = dataclasses.replace(ctx, parent=reply.prompt, seed=seed * 10 + generation + 1)
    assert repeated == 0
