"""The estimate of one run: upper bounds of its calls, tokens and cost, read from its plan.

Every figure is a bound the run cannot pass: each step evaluates at most the rows the plan gives
it, a task call's prompt is at most the longest candidate the run accepts (or the prompt itself,
if longer) plus the longest inputs of a row, counted at a conservative characters-per-token ratio,
and its answer at most `max_tokens`. Cached answers and early stops only make a run cheaper.

An llm_judge metric adds at most one judge call per task call (each evaluated row is judged once
per judged metric; failed rows and cached verdicts make none). A judge call's prompt is bounded by
its frame (system prompt, rubric, scale) plus the row's inputs, reference and answer, each at most
what the dataset's statistics and `max_tokens` allow and never more than the judge's cut
(`batch.judging.MAX_SHOWN_CHARS`); its answer by the metric's `max_tokens`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

from promptopt.experiments import plan as plans
from promptopt.experiments.models import Estimate, EstimateTerm, ExperimentCreate, RunBudget
from promptopt.experiments.plan import Plan

if TYPE_CHECKING:
    from promptopt.auth import Principal
    from promptopt.batch.judging import Embedder, Judge
    from promptopt.experiments.resolve import Resolved


class JudgeBound(NamedTuple):
    """What bounds one llm_judge call of a run: the judge and the texts it is shown."""

    judge: Judge
    input_chars: int  # the row's inputs as `name: value` lines
    reference_chars: int

    @property
    def metric(self) -> str:
        """The metric's name."""
        return self.judge.metric

    @property
    def model(self) -> str:
        """The model it calls."""
        return self.judge.model

    @property
    def output_tokens(self) -> int:
        """The most one call answers."""
        return self.judge.max_tokens

    def prompt_tokens(self, max_tokens: int) -> int:
        """Tokens of one judge request, for task answers of at most `max_tokens` tokens."""
        from promptopt.batch.judging import max_prompt_tokens
        from promptopt.spend.estimate import MAX_CHARS_PER_TOKEN

        return max_prompt_tokens(
            self.judge,
            plans.CHARS_PER_TOKEN,
            input_chars=self.input_chars,
            reference_chars=self.reference_chars,
            answer_chars=max_tokens * MAX_CHARS_PER_TOKEN,
        )


X = "\u00d7"  # the multiplication sign of the formulas shown to users


class EmbeddingBound(NamedTuple):
    """What bounds one embedding_similarity metric of a run.

    At most a request per evaluated row (a chunk sends one for all its rows), holding the row's
    answer and reference.
    """

    embedder: Embedder
    reference_chars: int

    @property
    def metric(self) -> str:
        """The metric's name."""
        return self.embedder.metric

    @property
    def model(self) -> str:
        """The model it calls (its provider's default embedding model unless params.model names one)."""
        return self.embedder.model

    @property
    def output_tokens(self) -> int:
        """An embedding request returns no tokens."""
        return 0

    def prompt_tokens(self, max_tokens: int) -> int:
        """Tokens one row adds: its answer (at most `max_tokens` tokens) and its reference."""
        from promptopt.spend.estimate import MAX_CHARS_PER_TOKEN

        chars = max_tokens * MAX_CHARS_PER_TOKEN + self.reference_chars
        return math.ceil(chars / plans.CHARS_PER_TOKEN)


Grader = JudgeBound | EmbeddingBound


def _judge_terms(plan: Plan, judges: list[Grader], max_tokens: int) -> list[EstimateTerm]:
    terms = []
    for bound in judges:
        what = "1 judge call" if isinstance(bound, JudgeBound) else "1 embedding request"
        terms.append(
            EstimateTerm(
                step=f"judge ({bound.metric}, {bound.model})",
                calls=plan.task_calls,
                formula=(
                    f"{what} per evaluated row {X} {plan.task_calls} task calls; each at most "
                    f"{bound.prompt_tokens(max_tokens)} tokens in, {bound.output_tokens} out"
                ),
            )
        )
    return terms


def _terms(plan: Plan) -> list[EstimateTerm]:
    if plan.mode == "regression":
        return [
            EstimateTerm(
                step="regression", calls=plan.test_calls, formula=f"1 prompt {X} {plan.test_rows} rows"
            )
        ]
    its, accept, optimize = plan.iterations, plan.validation_rows, plan.baseline_train_rows
    terms = [
        EstimateTerm(
            step="baseline",
            calls=plan.baseline_calls,
            formula=f"1 prompt {X} ({accept} accept rows + {optimize} optimize rows)",
        )
    ]
    for number, rung in enumerate(plan.rungs, 1):
        terms.append(
            EstimateTerm(
                step=f"screening rung {number}",
                calls=rung.candidates * rung.rows * its,
                formula=f"{rung.candidates} candidates {X} {rung.rows} rows {X} {its} iterations",
            )
        )
    terms += [
        EstimateTerm(
            step="validation",
            calls=plan.survivors * plan.validation_rows * its,
            formula=f"{plan.survivors} survivors {X} {plan.validation_rows} rows {X} {its} iterations",
        ),
        EstimateTerm(
            step="test",
            calls=plan.test_calls,
            formula=f"2 prompts (baseline, best) {X} {plan.test_rows} rows",
        ),
        EstimateTerm(
            step="optimizer",
            calls=plan.optimizer_calls,
            formula=f"{plan.candidates} proposals {X} {its} iterations",
        ),
    ]
    return terms


def _cost(model: str, input_tokens: int, output_tokens: int, input_chars: int) -> float:
    from promptopt.llm import pricing
    from promptopt.llm.types import Usage

    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, input_characters=input_chars)
    return pricing.cost(model, usage)


def _unpriced(model: str) -> bool:
    from promptopt.llm import pricing

    return not model.startswith("sim:") and pricing.price(model) is None


def _within(budget: RunBudget, calls: int, tokens: int, cost_usd: float) -> bool:
    return (
        (budget.max_calls is None or calls <= budget.max_calls)
        and (budget.max_tokens is None or tokens <= budget.max_tokens)
        and (budget.max_cost_usd is None or cost_usd <= budget.max_cost_usd)
    )


def estimate_plan(
    plan: Plan,
    *,
    prompt_chars: int,
    input_chars: int,
    max_tokens: int,
    target_model: str,
    optimizer_model: str,
    budget: RunBudget,
    judges: list[Grader] | None = None,
) -> Estimate:
    """Upper bounds of one run of `plan` (pure: no reads, no calls).

    Args:
        plan: the run's plan.
        prompt_chars: characters of the starting prompt (system prompt and template).
        input_chars: the most characters a row's inputs add to a rendered prompt.
        max_tokens: the cap on one task call's answer.
        target_model: the model the task calls go to (priced from the price table).
        optimizer_model: the model proposing candidates.
        budget: the run's hard limits, to say whether the bounds fit them.
        judges: the run's model-graded metrics (llm_judge, embedding_similarity), each adding at
            most one call per task call.
    """
    # A regression run evaluates the prompt as it is; an optimization run also evaluates candidates.
    longest = prompt_chars if plan.mode == "regression" else max(prompt_chars, plans.MAX_CANDIDATE_CHARS)
    chars_per_call = longest + input_chars
    tokens_in_per_call = math.ceil(chars_per_call / plans.CHARS_PER_TOKEN)
    task_calls, optimizer_calls = plan.task_calls, plan.optimizer_calls
    task_in, task_out = task_calls * tokens_in_per_call, task_calls * max_tokens
    opt_in = optimizer_calls * plans.OPTIMIZER_PROMPT_TOKENS
    opt_out = optimizer_calls * plans.OPTIMIZER_MAX_TOKENS
    cost = _cost(target_model, task_in, task_out, task_calls * chars_per_call)
    if optimizer_calls:
        opt_chars = opt_in * plans.CHARS_PER_TOKEN
        cost += _cost(optimizer_model, opt_in, opt_out, opt_chars)
    judge_calls = judge_in = judge_out = 0
    for bound in judges or []:
        tokens_in = task_calls * bound.prompt_tokens(max_tokens)
        tokens_out = task_calls * bound.output_tokens
        judge_calls += task_calls
        judge_in += tokens_in
        judge_out += tokens_out
        cost += _cost(bound.model, tokens_in, tokens_out, tokens_in * plans.CHARS_PER_TOKEN)
    cost_usd = math.ceil(cost * 1e6) / 1e6  # rounded up: still a bound
    notes = list(plan.notes)
    judge_models = [b.model for b in judges or []] if task_calls else []
    models = [target_model, *([optimizer_model] if optimizer_calls else []), *judge_models]
    for model in dict.fromkeys(models):
        if _unpriced(model):
            notes.append(f"no price is configured for {model}; its calls count $0 (see PROMPTOPT_PRICES)")
    if any(model.startswith("sim:") for model in models):
        notes.append("simulated models cost nothing; their answers are marked simulated")
    calls = task_calls + optimizer_calls + judge_calls
    tokens = task_in + task_out + opt_in + opt_out + judge_in + judge_out
    return Estimate(
        task_calls=task_calls,
        optimizer_calls=optimizer_calls,
        judge_calls=judge_calls,
        input_tokens=task_in + opt_in + judge_in,
        output_tokens=task_out + opt_out + judge_out,
        cost_usd=cost_usd,
        terms=_terms(plan) + _judge_terms(plan, judges or [], max_tokens),
        within_budget=_within(budget, calls, tokens, cost_usd),
        notes=notes,
    )


def estimate_resolved(resolved: Resolved, body: ExperimentCreate) -> Estimate:
    """The estimate of a checked request."""
    return estimate_plan(
        resolved.plan,
        prompt_chars=resolved.prompt_chars,
        input_chars=resolved.input_chars,
        max_tokens=body.max_tokens,
        target_model=resolved.target_model,
        optimizer_model=resolved.optimizer_model,
        budget=body.budget,
        judges=resolved.judge_bounds,
    )


def estimate(*, principal: Principal, body: ExperimentCreate) -> Estimate:
    """Check the request as create would, and bound what one run of it costs; stores nothing."""
    from promptopt.experiments.resolve import resolve

    return estimate_resolved(resolve(principal=principal, body=body), body)
