"""An optimization run in one process on the SIMULATED models, step for step as the run engine plans it.

For benchmarks and tests of search strategies (scripts/bench/optimizer, tests/unit/test_optimizer_*):
the same plan (`promptopt.experiments.plan`), rows (`screening_order`), proposals
(`promptopt.experiments.proposals`), selection (`promptopt.experiments.selection`) and strategy
bandit as `promptopt.experiments.engine`, without Firestore, queues or messages, so hundreds of
runs take seconds. One thing the engine does not offer is a setting here: a budget on task calls
alone (the final test evaluation is outside it).

Task calls are cached per run by (prompt, row), as the platform's response cache makes repeated
rows free; `calls` counts the misses. Every step is recorded (`Step`), so the same plan can be
replayed elsewhere (scripts/bench/optimizer replays it on threads against a slow simulator).
Everything here is simulated: the target is `sim:<seed>`, the optimizer `sim:optimizer`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from promptopt.datasets.files.splits import assign_split
from promptopt.evaluation import evaluate
from promptopt.experiments.models import OptimizerSettings
from promptopt.experiments.plan import SURVIVORS, make_plan
from promptopt.experiments.proposals import (
    Example,
    PromptText,
    Proposal,
    ProposalContext,
    build_request,
    fewshot,
    parse_reply,
)
from promptopt.experiments.rows import Row, screening_order
from promptopt.experiments.selection import (
    Lift,
    accepts,
    futile,
    keep_best,
    paired_lift,
    pareto_front,
    pick_parents,
)
from promptopt.experiments.strategies import Bandit, assign
from promptopt.llm import registry
from promptopt.llm.types import CompletionRequest
from promptopt.prompts.templates import placeholders, render

DATASETS = Path(__file__).resolve().parents[2] / "datasets"
BASELINE = "c000_00"
SOLVED = 0.999
HISTORY = 5


@dataclass(frozen=True)
class Task:
    """A bundled dataset split as ingest would split it (seeded by the row's input)."""

    name: str
    family: str
    column: str
    metric: str
    train: tuple[Row, ...]
    validation: tuple[Row, ...]
    test: tuple[Row, ...]


def load_task(name: str, split_seed: int = 0, root: Path = DATASETS) -> Task:
    """A bundled dataset (e.g. "bbh/navigate") with its rows assigned to splits by `split_seed`."""
    entries = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["datasets"]
    entry = next(e for e in entries if e["name"] == name)
    column, reference = entry["mapping"]["inputs"][0], entry["mapping"]["reference"]
    splits: dict[str, list[Row]] = {"train": [], "validation": [], "test": []}
    lines = (root / entry["file"]).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        data = json.loads(line)
        text = str(data.get(column) or "")
        if text.strip():
            row = Row(row=number, inputs={column: text}, reference=str(data[reference]))
            splits[assign_split(text, split_seed)].append(row)
    return Task(
        name=name,
        family=name.split("/", 1)[1],
        column=column,
        metric=entry["suggested_metric"],
        train=tuple(splits["train"]),
        validation=tuple(splits["validation"]),
        test=tuple(splits["test"]),
    )


@dataclass
class Step:
    """One step of a run: what it evaluated (new task calls per job) or how many proposals it asked."""

    phase: str
    jobs: list[list[tuple[str, str]]] = field(default_factory=list)  # per job: uncached (system, user)
    optimizer_requests: list[CompletionRequest] = field(default_factory=list)


@dataclass
class Evaluator:
    """Task calls against the simulated target, cached per run by (prompt, row)."""

    model: str
    metric: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # Tokens of every row's answer, cached or not (the platform's tie-break reads this figure).
    answer_tokens: int = 0
    cache: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)

    def run(
        self, prompt: PromptText, rows: tuple[Row, ...], step: Step | None
    ) -> tuple[list[str], list[float]]:
        """Outputs and per-row scores of `prompt` on `rows` (misses are recorded on `step`)."""
        provider = registry.provider(self.model)
        outputs, missed = [], []
        for row in rows:
            user = render(prompt.output_prompt, row.inputs)
            key = (prompt.system_prompt, user)
            if key not in self.cache:
                done = provider.complete(
                    CompletionRequest(user_prompt=user, system_prompt=prompt.system_prompt)
                )
                self.cache[key] = (done.text, done.usage.input_tokens + done.usage.output_tokens)
                self.calls += 1
                self.input_tokens += done.usage.input_tokens
                self.output_tokens += done.usage.output_tokens
                missed.append(key)
            text, tokens = self.cache[key]
            outputs.append(text)
            self.answer_tokens += tokens
        if step is not None:
            step.jobs.append(missed)
        scores, _ = evaluate(self.metric, outputs, [r.reference or "" for r in rows])
        return outputs, [float(s or 0.0) for s in scores]


@dataclass(frozen=True)
class SearchConfig:
    """One run's settings: the strategy, the optimizer settings, and the budget of task calls."""

    strategy: str = "auto"
    settings: OptimizerSettings = field(default_factory=OptimizerSettings)
    max_task_calls: int | None = None
    target_model: str = "sim:default"
    optimizer_model: str = "sim:optimizer"


@dataclass
class Candidate:
    """A prompt of the run and what is known about it."""

    prompt: PromptText
    strategy: str
    parent: str | None
    iteration: int
    accept_scores: list[float] | None = None
    examples: list[Example] = field(default_factory=list)
    tokens_per_row: float = 0.0
    lift: Lift | None = None


@dataclass
class SearchResult:
    """What a run found and spent."""

    baseline: PromptText
    best: PromptText
    best_id: str
    baseline_test: list[float]
    best_test: list[float]
    lift: Lift
    task_calls: int
    search_calls: int  # task calls before the final test evaluation
    optimizer_calls: int
    input_tokens: int  # task calls'
    output_tokens: int
    optimizer_input_tokens: int
    optimizer_output_tokens: int
    iterations: int
    accepted: int
    steps: list[Step]
    wall_s: float
    stop: str


def _examples(rows: tuple[Row, ...], outputs: list[str], scores: list[float]) -> list[Example]:
    return [
        Example(row=r.row, inputs=dict(r.inputs), output=o, reference=r.reference, score=s)
        for r, o, s in zip(rows, outputs, scores, strict=True)
    ]


def search(
    task: Task,
    baseline: PromptText,
    config: SearchConfig,
    *,
    seed: int = 0,
    on_step: Callable[[Step], None] | None = None,
) -> SearchResult:
    """Run the engine's loop in process (see the module docstring); deterministic for its inputs."""
    started = time.perf_counter()
    settings = config.settings.model_copy(update={"seed": seed})
    plan = make_plan(
        settings, {"train": len(task.train), "validation": len(task.validation), "test": len(task.test)}
    )
    accept_rows = task.validation[: plan.validation_rows]
    report_rows = task.test[: plan.test_rows]
    evaluator = Evaluator(config.target_model, task.metric)
    steps: list[Step] = []
    optimizer_calls = 0
    optimizer_tokens = [0, 0]
    optimizer = registry.provider(config.optimizer_model)

    def new_step(phase: str) -> Step:
        steps.append(Step(phase))
        return steps[-1]

    def rung_rows(iteration: int, rung: int) -> tuple[Row, ...]:
        order = screening_order(task.train, seed, iteration)
        size = plan.rungs[min(rung, len(plan.rungs) - 1)].rows
        return tuple(order[:size])

    def fits(planned: int) -> bool:
        return config.max_task_calls is None or evaluator.calls + planned <= config.max_task_calls

    step = new_step("baseline")
    base = Candidate(baseline, "baseline", None, 0)
    _, base.accept_scores = evaluator.run(baseline, accept_rows, step)
    first = rung_rows(1, 0)
    outputs, scores = evaluator.run(baseline, first, step)
    base.examples = _examples(first, outputs, scores)
    cands: dict[str, Candidate] = {BASELINE: base}
    incumbent, validated, frontier = BASELINE, [BASELINE], {BASELINE: 1}
    bandit = Bandit() if settings.strategy == "auto" else None
    no_improve, accepted_count, iteration, stop = 0, 0, 0, f"all {plan.iterations} iterations done"
    for iteration in range(1, plan.iterations + 1):
        if not fits(plan.candidates * plan.rungs[0].rows):
            stop = "budget"
            iteration -= 1
            break
        rng = random.Random(f"{seed}:{iteration}")  # noqa: S311 - the engine's random_for
        front = frontier if settings.parents == "pareto" else {incumbent: 1}
        parents = pick_parents(front, plan.candidates, rng)
        ranked = sorted(
            (c for c in validated if cands[c].accept_scores),
            key=lambda c: sum(cands[c].accept_scores or []) / max(1, len(cands[c].accept_scores or [])),
            reverse=True,
        )[:HISTORY]
        history = [
            (cands[c].prompt, sum(cands[c].accept_scores or []) / len(cands[c].accept_scores or [1]))
            for c in ranked
        ]
        step = new_step("propose")
        alive: list[str] = []
        strategies = assign(settings.strategy, len(parents), bandit, rng)
        for index, parent in enumerate(parents):
            shown = cands[parent].examples
            strategy = strategies[index]
            if (
                strategy == "fewshot"
                and settings.strategy == "auto"
                and not any(e.score >= SOLVED for e in shown)
            ):
                strategy = "reflective"
            ctx = ProposalContext(
                strategy=strategy,
                parent=cands[parent].prompt,
                parent_id=parent,
                placeholders=sorted(placeholders(cands[parent].prompt.output_prompt)),
                failures=[e for e in shown if e.score < SOLVED],
                successes=[e for e in shown if e.score >= SOLVED],
                history=history,
                metric=task.metric,
                seed=seed * 1000 + iteration * 31 + index,
                index=index,
                max_demos=settings.max_demos,
            )
            if strategy == "fewshot":
                reply = fewshot(ctx, rng)
            else:
                request = build_request(ctx, model=config.optimizer_model)
                assert request is not None
                step.optimizer_requests.append(request)
                done = optimizer.complete(request)
                reply = parse_reply(done.text, ctx)
                optimizer_calls += 1
                optimizer_tokens[0] += done.usage.input_tokens
                optimizer_tokens[1] += done.usage.output_tokens
            if isinstance(reply, Proposal):
                cid = f"c{iteration:03d}_{index + 1:02d}"
                cands[cid] = Candidate(reply.prompt, strategy, parent, iteration)
                alive.append(cid)
        survivors: list[str] = []
        for rung in range(len(plan.rungs)):
            rows = rung_rows(iteration, rung)
            if not alive or not fits(len(alive) * len(rows)):
                alive = []
                break
            step = new_step(f"screen-{iteration}-{rung}")
            means: dict[str, float] = {}
            cost: dict[str, float] = {}
            for cid in alive:
                tokens_before = evaluator.answer_tokens
                outputs, scores = evaluator.run(cands[cid].prompt, rows, step)
                cands[cid].examples = _examples(rows, outputs, scores)
                means[cid] = sum(scores) / len(scores)
                cost[cid] = cands[cid].tokens_per_row = (evaluator.answer_tokens - tokens_before) / len(rows)
            if len(alive) <= SURVIVORS or rung + 1 >= len(plan.rungs):
                survivors = keep_best(means, min(plan.survivors, len(alive)), cost=cost)
                break
            alive = keep_best(means, math.ceil(len(alive) / 2), cost=cost)
        accepted: list[tuple[float, str]] = []
        look = plan.validation_look
        incumbent_scores = cands[incumbent].accept_scores or []
        if survivors and look and fits(len(survivors) * look):
            # Validation's first look: a candidate it rules out is not validated further.
            step = new_step(f"validate-{iteration}-look")
            going = []
            for cid in survivors:
                _, seen = evaluator.run(cands[cid].prompt, accept_rows[:look], step)
                lift = paired_lift(seen, incumbent_scores[:look], seed=seed)
                if futile(lift, settings.min_improvement):
                    cands[cid].lift = lift
                else:
                    going.append(cid)
            survivors = going  # none left: the iteration ends without a candidate accepted
        elif survivors and look:
            stop = "budget"
            break
        if survivors and fits(len(survivors) * len(accept_rows)):
            step = new_step(f"validate-{iteration}")
            for cid in survivors:
                _, cands[cid].accept_scores = evaluator.run(cands[cid].prompt, accept_rows, step)
                lift = paired_lift(cands[cid].accept_scores or [], incumbent_scores, seed=seed)
                cands[cid].lift = lift
                validated.append(cid)
                if accepts(lift, settings.min_improvement):
                    accepted.append((lift.mean, cid))
        elif survivors:
            stop = "budget"
            break
        if bandit is not None:
            for cand in cands.values():
                if cand.iteration == iteration and cand.strategy in bandit.arms:
                    bandit.update(cand.strategy, max(0.0, cand.lift.mean if cand.lift else 0.0), 1)
        if accepted:
            incumbent = sorted(accepted, reverse=True)[0][1]
            no_improve = 0
            accepted_count += 1
        else:
            no_improve += 1
        frontier = pareto_front({c: cands[c].accept_scores or [] for c in validated}) or {incumbent: 1}
        if on_step is not None:
            on_step(steps[-1])
        if no_improve >= settings.patience:
            stop = f"no improvement for {settings.patience} iteration(s)"
            break
        if not survivors and not fits(1):
            stop = "budget"
            break
    search_calls = evaluator.calls
    step = new_step("final")
    _, base_test = evaluator.run(baseline, report_rows, step)
    _, best_test = evaluator.run(cands[incumbent].prompt, report_rows, step)
    return SearchResult(
        baseline=baseline,
        best=cands[incumbent].prompt,
        best_id=incumbent,
        baseline_test=base_test,
        best_test=best_test,
        lift=paired_lift(best_test, base_test, seed=seed),
        task_calls=evaluator.calls,
        search_calls=search_calls,
        optimizer_calls=optimizer_calls,
        input_tokens=evaluator.input_tokens,
        output_tokens=evaluator.output_tokens,
        optimizer_input_tokens=optimizer_tokens[0],
        optimizer_output_tokens=optimizer_tokens[1],
        iterations=iteration,
        accepted=accepted_count,
        steps=steps,
        wall_s=time.perf_counter() - started,
        stop=stop,
    )
