"""One iteration's proposals: choose parents and strategies, ask the optimizer model, keep valid replies.

Only rows of the optimize split reach the optimizer model (the failures and successes of a parent
come from its screening jobs on that split); the accept split is seen only as scores of whole
prompts, and the report split never.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptopt.experiments import jobs as run_jobs
from promptopt.experiments import paths

if TYPE_CHECKING:
    from promptopt.experiments.engine import Run, Step
    from promptopt.experiments.proposals import Example, Proposal, ProposalContext, Rejected

log = logging.getLogger(__name__)
HISTORY = 5  # prior candidates shown to a history (OPRO-like) proposal
SOLVED = 0.999  # a row scoring at least this counts as answered correctly


@dataclass
class Proposals:
    """What one iteration's proposing produced and cost."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def _examples(run: Run, cid: str) -> list[Example]:
    """The candidate's answers on its latest optimize-split rows, as the optimizer is shown them."""
    from promptopt.experiments.engine import _rows_for
    from promptopt.experiments.proposals import Example

    entry = (run.state.get("cands") or {}).get(cid) or {}
    job_id, tag = entry.get("examples_job"), entry.get("examples_tag")
    if not job_id or not tag or not str(tag).startswith("optimize-"):
        return []
    found = run_jobs.state(run.tenant, job_id)
    if found is None:
        return []
    rows = _rows_for(run, {"tag": tag, "purpose": "optimize"})
    result = run_jobs.read_result(run.tenant, job_id, found[1], run.config["metric"]["name"], len(rows))
    return [
        Example(row=r.row, inputs=dict(r.inputs), output=out, reference=r.reference, score=score)
        for r, out, score in zip(rows, result.outputs, result.scores, strict=True)
    ]


def _texts(run: Run, step: Step, cid: str) -> tuple[str, str]:
    from promptopt.experiments.engine import _candidate_texts

    return _candidate_texts(run, step, cid)


def candidates(run: Run, step: Step, *, iteration: int) -> Proposals:
    """Propose this iteration's candidates (written into `step`); returns what it cost."""
    from promptopt.experiments.engine import random_for
    from promptopt.experiments.proposals import PromptText, Proposal, ProposalContext, fewshot
    from promptopt.experiments.selection import pick_parents
    from promptopt.experiments.strategies import Bandit, assign
    from promptopt.prompts.templates import placeholders

    settings = run.config["optimizer"]
    state = step.state
    cands: dict[str, Any] = state["cands"]
    rng = random_for(run, iteration)
    bandit: Bandit | None = None
    if settings["strategy"] == "auto":
        bandit = Bandit.from_dict(state["bandit"]) if state.get("bandit") else Bandit()
    front = state.get("frontier") or {state["incumbent"]: 1}
    if settings.get("parents") == "incumbent":
        front = {state["incumbent"]: 1}
    parents = pick_parents(front, run.plan.candidates, rng)
    examples = {p: _examples(run, p) for p in set(parents)}
    ranked = sorted(
        (c for c in state.get("validated", []) if (cands[c].get("accept") or {}).get("mean") is not None),
        key=lambda c: cands[c]["accept"]["mean"],
        reverse=True,
    )[:HISTORY]
    history = [(PromptText(*_texts(run, step, c)), float(cands[c]["accept"]["mean"])) for c in ranked]
    contexts: list[ProposalContext] = []
    strategies = assign(settings["strategy"], len(parents), bandit, rng)
    for index, parent in enumerate(parents):
        system_prompt, output_prompt = _texts(run, step, parent)
        shown = examples[parent]
        strategy = strategies[index]
        if (
            strategy == "fewshot"
            and settings["strategy"] == "auto"
            and not any(e.score >= SOLVED for e in shown)
        ):
            strategy = "reflective"  # no row answered right yet: nothing to demonstrate
        contexts.append(
            ProposalContext(
                strategy=strategy,
                parent=PromptText(system_prompt, output_prompt),
                parent_id=parent,
                placeholders=sorted(placeholders(output_prompt)),
                failures=[e for e in shown if e.score < SOLVED],
                successes=[e for e in shown if e.score >= SOLVED],
                history=history,
                metric=run.config["metric"]["name"],
                seed=int(settings["seed"]) * 1000 + iteration * 31 + index,
                index=index,
                max_demos=int(settings.get("max_demos", 3)),
            )
        )
    out = Proposals()
    replies: dict[int, Proposal | Rejected] = {}
    asked = [i for i, c in enumerate(contexts) if c.strategy != "fewshot"]
    for i, ctx in enumerate(contexts):
        if ctx.strategy == "fewshot":
            replies[i] = fewshot(ctx, rng)
    if asked:
        with ThreadPoolExecutor(max_workers=min(8, len(asked)), thread_name_prefix="optimizer") as pool:
            for i, (reply, usage) in zip(
                asked, pool.map(lambda i: _ask(run, contexts[i]), asked), strict=True
            ):
                replies[i] = reply
                out.calls += 1
                out.input_tokens += usage[0]
                out.output_tokens += usage[1]
                out.cost_usd += usage[2]
    for index, ctx in enumerate(contexts):
        reply = replies[index]
        if not isinstance(reply, Proposal):
            out.rejected.append(f"{ctx.strategy}: {reply.reason}")
            continue
        cid = paths.candidate_id(iteration, index + 1)
        step.candidates[cid] = {
            "candidate_id": cid,
            "system_prompt": reply.prompt.system_prompt,
            "output_prompt": reply.prompt.output_prompt,
            "critique": reply.critique[:4000],
            "strategy": ctx.strategy,
            "parent": ctx.parent_id,
            "iteration": iteration,
            "shown_rows": list(reply.shown_rows)[:200],
        }
        cands[cid] = {
            "strategy": ctx.strategy,
            "parent": ctx.parent_id,
            "iteration": iteration,
            "status": "screening",
            "rung_means": [],
        }
        out.accepted.append(cid)
    if bandit is not None:
        state["bandit"] = bandit.to_dict()
    return out


def _ask(run: Run, ctx: ProposalContext) -> tuple[Proposal | Rejected, tuple[int, int, float]]:
    """One optimizer call: the reply parsed and checked, and its tokens and cost."""
    from promptopt.experiments.proposals import Rejected, build_request, parse_reply
    from promptopt.llm import registry
    from promptopt.llm.errors import classify

    model = run.config["optimizer_model"]
    request = build_request(ctx, model=model)
    if request is None:
        return Rejected("model_error"), (0, 0, 0.0)
    try:
        completion = registry.provider(model).complete(request)
    except Exception as exc:
        failure = classify(exc, model=model)
        if failure is None:
            raise
        log.warning("optimizer call failed: %s", failure.code)
        return Rejected(f"model_error ({failure.code})"), (0, 0, 0.0)
    usage = completion.usage
    return parse_reply(completion.text, ctx), (usage.input_tokens, usage.output_tokens, completion.cost_usd)
