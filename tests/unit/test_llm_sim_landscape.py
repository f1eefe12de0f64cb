"""The simulated model's landscape: seeded, deterministic, tolerant of paraphrase, hurt by distractors.

Every figure here comes from the simulator (promptopt.llm.sim.landscape); the assertions are on
orderings and margins that hold for any seed, never on one seed's values.
"""

from __future__ import annotations

import pytest

from promptopt.evaluation import evaluate
from promptopt.llm.sim import landscape as sim_landscape
from promptopt.llm.sim.features import instructions, read_features
from promptopt.llm.sim.provider import SimProvider
from promptopt.llm.types import CompletionRequest
from promptopt.local.sim_bench import Dataset, load

SEEDS = ("default", "alpha", "beta")
FAMILIES = ("boolean_expressions", "web_of_lies", "navigate", "object_counting")


def mean(dataset: Dataset, template: str, seed: str, system: str = "", rows: int = 250) -> float:
    sim = SimProvider(seed)
    outputs = [
        sim.complete(
            CompletionRequest(user_prompt=template.replace("{input}", text), system_prompt=system)
        ).text
        for text in dataset.inputs[:rows]
    ]
    _, result = evaluate(dataset.metric, outputs, dataset.references[:rows])
    return result.mean


def features(template: str, system: str = "") -> list[str]:
    return read_features(*instructions(system, template.replace("{input}", "Question: x"))).names()


@pytest.fixture(scope="module")
def navigate() -> Dataset:
    return load("bbh/navigate")


def test_the_landscape_is_drawn_from_the_seed_and_deterministic() -> None:
    for family in FAMILIES:
        drawn = {seed: sim_landscape.landscape(family, seed) for seed in SEEDS}
        assert drawn["default"] == sim_landscape.landscape(family, "default")  # same seed, same landscape
        assert len({(d.comply, d.error, d.reasoning, d.edge_error) for d in drawn.values()}) == len(SEEDS)
    request = CompletionRequest(user_prompt="not ( True ) and ( True ) is\nAnswer with True or False.")
    assert SimProvider("alpha").complete(request).text == SimProvider("alpha").complete(request).text


def test_the_same_prompt_scores_the_same_and_seeds_differ(navigate: Dataset) -> None:
    template = "{input}\nAnswer with Yes or No."
    assert mean(navigate, template, "alpha") == mean(navigate, template, "alpha")
    assert len({mean(navigate, template, seed) for seed in SEEDS}) > 1


@pytest.mark.parametrize(
    ("template", "system", "expected"),
    [
        ("{input}\nAnswer with Yes or No.", "", ["format"]),
        ("{input}\nReply 'yes' or 'no'.", "", ["format"]),
        ("{input}\nLet's think step by step.", "", ["reasoning"]),
        ("{input}\nWork through it one step at a time.", "", ["reasoning"]),
        ("{input}\nBreak the problem down.", "", ["reasoning"]),
        ("{input}\nThen give your final answer.", "", ["delimiter"]),
        ("{input}\nConclude with the answer on the last line.", "", ["delimiter"]),
        ("{input}\nBe concise.", "", ["brevity"]),
        ("{input}\nNo preamble.", "", ["brevity"]),
        ("{input}", "You are a meticulous logician.", ["role"]),
        ("{input}", "Act as a navigator.", ["role"]),
        ("{input}\nWhen you turn around, your direction reverses.", "", ["rule(direction)"]),
        ("{input}\nPay attention to every turn.", "", ["rule(direction)"]),
        ("{input}\nIf the statement is ambiguous, answer No.", "", ["rule(generic)"]),
        ("Q: a\nA: Yes\n\nQ: {input}", "", ["demos"]),
        ("{input}\nExplain your answer in detail.", "", ["verbose"]),
        ("{input}\nAnswer with Yes or No. Answer with True or False.", "", ["format", "conflict"]),
        ("{input}\nDo not add explanations.", "", ["brevity"]),  # a negated "explain" is no distractor
    ],
)
def test_features_are_read_tolerantly(template: str, system: str, expected: list[str]) -> None:
    assert features(template, system) == expected


@pytest.mark.parametrize("family", FAMILIES)
def test_a_bare_question_states_no_feature(family: str) -> None:
    for text in load(f"bbh/{family}").inputs:
        assert read_features(*instructions("", text)).names() == [], text


@pytest.mark.parametrize("seed", SEEDS)
def test_paraphrases_of_a_feature_work_alike(navigate: Dataset, seed: str) -> None:
    bare = mean(navigate, "{input}", seed)
    phrasings = [
        "{input}\nAnswer with Yes or No.",
        "{input}\nReply with Yes or No.",
        "{input}\nRespond with 'yes' or 'no'.",
        "{input}\nSay only yes/no.",
    ]
    found = [mean(navigate, p, seed) for p in phrasings]
    assert bare == 0.0
    assert min(found) >= 0.15, found  # every phrasing of the format works
    assert max(found) - min(found) <= 0.12, found  # near-identical prompts differ a little, not a lot
    assert len(set(found)) > 1, found  # but they do differ


@pytest.mark.parametrize("seed", SEEDS)
def test_distractors_lower_the_score(navigate: Dataset, seed: str) -> None:
    good = "{input}\nThink step by step, then give your final answer. Answer with Yes or No. Be concise."
    clean = mean(navigate, good, seed)
    assert mean(navigate, good + " Explain your answer in detail.", seed) < clean - 0.1
    assert mean(navigate, good + " Answer with True or False.", seed) < clean - 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_reasoning_helps_only_with_a_delimiter_and_the_best_is_reported(navigate: Dataset, seed: str) -> None:
    fmt = mean(navigate, "{input}\nAnswer with Yes or No.", seed)
    steps = mean(navigate, "{input}\nLet's think step by step. Answer with Yes or No.", seed)
    delimited = mean(
        navigate, "{input}\nLet's think step by step, then give the answer. Answer with Yes or No.", seed
    )
    assert delimited - fmt >= 0.1, (fmt, delimited)
    assert steps - fmt < (delimited - fmt) / 2, (fmt, steps, delimited)
    best = sim_landscape.best("navigate", seed, navigate.inputs, navigate.metric)
    assert {"format", "reasoning", "delimiter"} <= set(best.features.names())
    assert delimited < best.score <= 1.0
    everything = (
        "{input}\nThink step by step, then give the answer. Answer with Yes or No. Be concise. "
        "When you turn around, your direction reverses."
    )
    reached = mean(navigate, everything, seed, system="You are a careful navigator.")
    assert abs(reached - best.score) <= 0.12, (reached, best)  # the expectation matches the simulator


def test_the_best_reachable_score_stays_below_one_somewhere() -> None:
    scores = []
    for family in FAMILIES:
        dataset = load(f"bbh/{family}")
        for seed in SEEDS:
            scores.append(sim_landscape.best(family, seed, dataset.inputs, dataset.metric).score)
    assert all(0.5 < s <= 1.0 for s in scores)
    assert sum(s < 0.95 for s in scores) >= 3


def test_the_slow_twin_answers_the_same_after_its_latency() -> None:
    request = CompletionRequest(user_prompt="not ( True ) and ( True ) is\nAnswer with True or False.")
    slow = SimProvider("alpha@30ms").complete(request)
    assert slow.text == SimProvider("alpha").complete(request).text
    assert slow.latency_s >= 0.03
    assert slow.model == "sim:alpha@30ms"
