"""The optimizer library on the SIMULATED landscape: selection bugs that a flat landscape would hide.

Prompts are scored by the simulator (`sim:<seed>`) on real bundled rows, so which prompt is better
comes from the landscape (promptopt.llm.sim.landscape), never from numbers written here. Each of
the first four tests fails when its piece is broken: a Pareto front that keeps only the best
total, a successive-halving rung that keeps the wrong half, an acceptance rule that takes a
positive mean without its CI, a first look at validation that stops a real gain or lets a loss on.
"""

from __future__ import annotations

import random

import pytest

from promptopt.experiments.models import OptimizerSettings
from promptopt.experiments.proposals import PromptText
from promptopt.experiments.selection import (
    accepts,
    futile,
    keep_best,
    paired_lift,
    pareto_front,
    pick_parents,
)
from promptopt.llm.sim import landscape as sim_landscape
from promptopt.llm.sim import optimizer as sim_optimizer
from promptopt.llm.sim.features import instructions, read_features
from promptopt.local.sim_search import Evaluator, SearchConfig, Task, load_task, search

SEEDS = ("default", "alpha", "beta")
FORMAT = "Answer with Yes or No."
REASONED = "{input}\nThink step by step, then give your final answer. " + FORMAT
RULED = (
    "{input}\n"
    + FORMAT
    + " Be concise.\nRemember that when someone lies, the opposite of what they say is true."
)


@pytest.fixture(scope="module")
def liars() -> Task:
    return load_task("bbh/web_of_lies", 0)


def scores(task: Task, template: str, seed: str, rows: str = "validation") -> list[float]:
    return Evaluator(f"sim:{seed}", task.metric).run(PromptText("", template), getattr(task, rows), None)[1]


def expected(task: Task, template: str, seed: str) -> float:
    found = read_features(*instructions("", template.replace("{input}", "Question: x")))
    problems = [r.inputs[task.column] for r in task.train]
    return sim_landscape.expected(found, task.family, seed, problems, task.metric)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_pareto_front_keeps_prompts_that_win_different_rows(liars: Task, seed: str) -> None:
    # Reasoning fixes ordinary rows, an edge-case rule fixes the liar-first rows: each wins rows
    # the other loses, and the format alone is dominated by neither... or beaten on every row.
    found = {
        "format": scores(liars, "{input}\n" + FORMAT, seed),
        "reasoned": scores(liars, REASONED, seed),
        "ruled": scores(liars, RULED, seed),
    }
    front = pareto_front(found)
    assert {"reasoned", "ruled"} <= set(front), front
    assert all(front[c] >= 1 for c in front)
    drawn = {p for i in range(40) for p in pick_parents(front, 2, random.Random(i))}
    assert {"reasoned", "ruled"} <= drawn


@pytest.mark.parametrize("seed", SEEDS)
def test_a_halving_rung_keeps_the_better_half(liars: Task, seed: str) -> None:
    templates = {
        "c1": "{input}",
        "c2": "{input}\nAnswer with Yes or No.",
        "c3": REASONED,
        "c4": REASONED
        + " Be concise.\nRemember that when someone lies, the opposite of what they say is true.",
    }
    truth = sorted(templates, key=lambda c: expected(liars, templates[c], seed), reverse=True)
    means = {
        c: sum(s) / len(s) for c, s in ((c, scores(liars, t, seed, "train")) for c, t in templates.items())
    }
    assert set(keep_best(means, 2)) == set(truth[:2]), (means, truth)
    assert keep_best(means, 1) == truth[:1]


@pytest.mark.parametrize("seed", SEEDS)
def test_acceptance_rejects_paraphrases_and_takes_a_real_gain(liars: Task, seed: str) -> None:
    paraphrases = [
        "{input}\nAnswer with Yes or No.",
        "{input}\nReply with Yes or No.",
        "{input}\nRespond with 'yes' or 'no'.",
        "{input}\nSay only yes/no.",
        "{input}\nWrite yes or no.",
    ]
    kinds = {
        tuple(read_features(*instructions("", p.replace("{input}", "Q: x"))).names()) for p in paraphrases
    }
    assert kinds == {("format",)}  # the same features: any difference between them is noise
    found = [scores(liars, p, seed) for p in paraphrases]
    lifts = [paired_lift(a, b, seed=1) for a in found for b in found if a is not b]
    # Noise a mean alone would take for a gain, often; a 95% CI takes it rarely (about 1 in 40).
    assert sum(lift.mean > 0 for lift in lifts) >= 5, lifts
    assert sum(accepts(lift, 0.0) for lift in lifts) <= 2, [lift for lift in lifts if accepts(lift, 0.0)]
    real = paired_lift(scores(liars, REASONED, seed), found[0], seed=1)
    assert accepts(real, 0.0), real


@pytest.mark.parametrize("seed", SEEDS)
def test_the_first_look_stops_losses_and_ties_and_lets_real_gains_on(liars: Task, seed: str) -> None:
    look = 16  # the first look of the default validation (32 rows)
    fmt = scores(liars, "{input}\n" + FORMAT, seed)[:look]
    reasoned = scores(liars, REASONED, seed)[:look]
    bare = scores(liars, "{input}", seed)[:look]
    assert not futile(paired_lift(reasoned, fmt, seed=1), 0.0)  # a real gain is validated fully
    assert futile(paired_lift(bare, fmt, seed=1), 0.0)  # a loss stops at the first look
    assert futile(paired_lift(fmt, fmt, seed=1), 0.0)  # so does no change at all
    assert futile(paired_lift(reasoned, fmt, seed=1), 0.9)  # and a gain below min_improvement


def test_the_simulated_optimizer_never_reads_the_landscape(monkeypatch: pytest.MonkeyPatch) -> None:
    source = sim_optimizer.__dict__
    assert not any(name in source for name in ("sim_landscape", "landscape", "read_features", "SimProvider"))

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the optimizer looked at the landscape")

    task = load_task("bbh/navigate", 1)
    config = SearchConfig(
        strategy="reflective", settings=OptimizerSettings(max_iterations=2), target_model="sim:alpha"
    )
    monkeypatch.setattr(sim_optimizer, "_Dice", sim_optimizer._Dice)  # the module itself is unchanged
    original = sim_optimizer.SimOptimizer.complete

    def guarded(self: sim_optimizer.SimOptimizer, request: object) -> object:
        with monkeypatch.context() as m:
            m.setattr(sim_landscape, "landscape", forbidden)
            m.setattr(sim_landscape, "best", forbidden)
            m.setattr(sim_landscape, "expected", forbidden)
            return original(self, request)  # type: ignore[arg-type]

    monkeypatch.setattr(sim_optimizer.SimOptimizer, "complete", guarded)
    result = search(task, PromptText("", "{input}"), config, seed=1)
    assert result.optimizer_calls > 0


@pytest.mark.parametrize(
    ("template", "outputs", "move"),
    [
        ("{input}", ["Hmm, let me see. I lean towards Yes, though No is not out of the question."], "format"),
        (
            "{input}\n" + FORMAT,
            ["Hmm, let me see. I lean towards Yes, though No is not out of the question."],
            "brevity",
        ),
        (
            "{input}\n" + FORMAT + " Explain your answer in detail.",
            ["Hmm, I lean towards Yes, though No is not out of it."],
            "cleanup",
        ),
        ("{input}\n" + FORMAT, ["No"], "reasoning"),
        ("{input}\nLet's think step by step. " + FORMAT, ["No"], "delimiter"),
        (REASONED, ["No"], "rule"),
    ],
)
def test_the_simulated_optimizer_proposes_what_the_failures_show(
    template: str, outputs: list[str], move: str
) -> None:
    shown = [
        sim_optimizer._Shown(
            outputs[0], "Yes", 0.0, "Question: Ka lies. Bo says Ka lies. Does Bo tell the truth?"
        )
    ] * 4
    diagnosis = sim_optimizer._diagnose(shown, template)
    assert diagnosis.move == move, diagnosis
    if move == "rule":
        assert diagnosis.topic == "liars"


def test_the_default_strategy_climbs_most_of_the_way_and_beats_blind_rewrites() -> None:
    task = load_task("bbh/navigate", 0)
    settings = {"max_iterations": 50, "patience": 10}
    reached, blind = [], []
    for seed in (0, 1):
        best = sim_landscape.best(
            task.family, f"s{seed}", [r.inputs["input"] for r in task.test], task.metric
        ).score
        for strategy, out in (("auto", reached), ("random", blind)):
            config = SearchConfig(
                strategy=strategy,
                settings=OptimizerSettings(strategy=strategy, **settings),  # type: ignore[arg-type]
                max_task_calls=800,
                target_model=f"sim:s{seed}",
            )
            result = search(task, PromptText("", "{input}"), config, seed=seed)
            assert result.search_calls <= 800
            out.append(sum(result.best_test) / len(result.best_test) / best)
    assert min(reached) >= 0.6, reached
    assert sum(reached) > sum(blind), (reached, blind)


def test_auto_does_not_plateau_where_the_seed_prompt_already_scores() -> None:
    # On object_counting the bare question already scores (a numeric answer is read from the
    # rambling) and blind rewrites find reasoning quickly. Here auto once stalled at a format and
    # a rule (0.47 of a reachable 0.87): gains of a few rows were left unvalidated while the budget
    # went on validating two candidates per iteration, and history's near-copies took the slots.
    task = load_task("bbh/object_counting", 2)
    best = sim_landscape.best(task.family, "s2", [r.inputs["input"] for r in task.test], task.metric).score
    found = {}
    for strategy in ("auto", "random"):
        config = SearchConfig(
            strategy=strategy,
            settings=OptimizerSettings(strategy=strategy, max_iterations=50, patience=10),  # type: ignore[arg-type]
            max_task_calls=800,
            target_model="sim:s2",
        )
        result = search(task, PromptText("", "{input}"), config, seed=2)
        found[strategy] = sum(result.best_test) / len(result.best_test)
    assert found["auto"] >= 0.9 * best, (found, best)
    assert found["auto"] >= found["random"], found
