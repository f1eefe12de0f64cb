"""The run's state machine: one `advance` moves a run to its next step when the step it waits for is done.

A run waits for a set of evaluation jobs (its "waiting" map). Every delivery that may matter (the
run was started, one of its jobs was scored, in the chunk that completed it or by its message, a
sweep found it idle) calls `advance`, which:

1. returns at once if the run is final, or if any job it waits for is unfinished (creating a job
   that a crash left uncreated);
2. otherwise claims the step (`promptopt.experiments.claims`; a concurrent delivery of the same
   step exits instead of computing it again or paying for the same optimizer calls) and computes
   the next step from the finished jobs: accept or reject candidates, ask the optimizer model for
   new ones, choose the next rows, or finish;
3. writes the new state with a precondition on the run document's update time, so of any number
   of concurrent or repeated deliveries exactly one transition wins (the others re-read and see
   that the step moved on);
4. then creates the new step's jobs, prompt versions and label (each idempotent: derived ids, or
   found before created), so a crash between the write and these effects is repaired by the next
   `advance` of the same run.

Steps: baseline (the base prompt on the accept rows and the first screening rows) → per iteration:
propose → screen (successive halving on the optimize split) → validate (the best survivor on the
accept split, paired against the incumbent: a first look at part of the rows, then all of them unless
the first look rules it out) → … → final (baseline and best on the held-out report split)
→ completed. Regression runs evaluate one version on the report split and compare with the
previous run on the same rows.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptopt.experiments import claims, paths
from promptopt.experiments import jobs as run_jobs
from promptopt.experiments.plan import SURVIVORS, Plan
from promptopt.experiments.rows import MAX_SPLIT_ROWS, Row, screening_order, split_rows

if TYPE_CHECKING:
    from promptopt.batch.models import EvaluationCreate

log = logging.getLogger(__name__)

BASELINE = "c000_00"
FINAL = ("completed", "failed", "cancelled", "budget_exhausted", "regressed")
_ATTEMPTS = 5
_IO_THREADS = 8  # reads and job creations of one transition that run at once


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


class RunGone(LookupError):
    """The run (or its experiment) no longer exists."""


@dataclass
class Step:
    """What one transition decides: the new state, run fields, candidate writes and events."""

    state: dict[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)

    def event(self, kind: str, message: str) -> None:
        """Record something the run did or met."""
        self.events.append((kind, message[:500]))


@dataclass
class Run:
    """A run as one transition reads it."""

    tenant: str
    experiment_id: str
    run_id: str
    ref: Any
    data: dict[str, Any]
    # What this transition read, so no document is fetched twice: the waiting jobs (None: absent)
    # and candidate documents (both as committed when read; refreshed by this run's own writes).
    jobs: dict[str, tuple[str, dict[str, Any]] | None] = field(default_factory=dict, repr=False)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # The requests of the jobs this delivery's step set, by job id: building one validates every
    # row, so creating the jobs reuses them rather than building each again.
    requests: dict[str, EvaluationCreate] = field(default_factory=dict, repr=False)
    # Finished jobs' rows and scores as the process advancing the run has them (not read back).
    given: dict[str, run_jobs.GivenRows] = field(default_factory=dict, repr=False)
    # The delivery advancing the run, and the step claims it holds (kept across its attempts).
    token: str = field(default="", repr=False)
    held: list[str] = field(default_factory=list, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        """The settings pinned at start."""
        return self.data["config"]

    @property
    def state(self) -> dict[str, Any]:
        """The search state."""
        return self.data.get("state") or {}

    @property
    def plan(self) -> Plan:
        """The run's plan (fixed at start)."""
        stored = self.data["plan"]
        from promptopt.experiments.plan import Rung

        return Plan(
            iterations=stored["iterations"],
            candidates=stored["candidates"],
            rungs=tuple(Rung(**r) for r in stored["rungs"]),
            survivors=stored["survivors"],
            validation_rows=stored["validation_rows"],
            test_rows=stored["test_rows"],
            baseline_train_rows=stored["baseline_train_rows"],
            mode=stored.get("mode", "optimize"),
            validation_look=int(stored.get("validation_look", 0)),
        )

    def rows(self, purpose: str) -> tuple[Row, ...]:
        """The rows of the split that serves `purpose` (optimize, accept, report)."""
        cfg = self.config
        split = cfg["splits"][purpose]
        limit = {
            "optimize": MAX_SPLIT_ROWS,
            "accept": self.plan.validation_rows,
            "report": self.plan.test_rows,
        }
        return split_rows(self.tenant, cfg["dataset_id"], cfg["dataset_version"], split, limit[purpose])

    def rung_rows(self, iteration: int, rung: int) -> tuple[Row, ...]:
        """The rows of screening rung `rung` of `iteration` (iteration 1's rung 0 for the baseline)."""
        order = screening_order(self.rows("optimize"), int(self.config["optimizer"]["seed"]), iteration)
        rungs = self.plan.rungs
        size = rungs[min(rung, len(rungs) - 1)].rows if rungs else len(order)
        return tuple(order[:size])


def load(tenant: str, experiment_id: str, run_id: str) -> tuple[Run, Any]:
    """The run and its snapshot (for the precondition)."""
    ref = paths.run_ref(tenant, experiment_id, run_id)
    snapshot = ref.get()
    if not snapshot.exists:
        raise RunGone(f"run {run_id} of {experiment_id} not found")
    return Run(tenant, experiment_id, run_id, ref, snapshot.to_dict() or {}), snapshot


def advance(
    tenant: str, experiment_id: str, run_id: str, *, given: dict[str, run_jobs.GivenRows] | None = None
) -> str:
    """Move the run on if the step it waits for is done; returns what happened (for logs and tests).

    `given`: rows and scores of jobs the caller has just scored, by job id (see `GivenRows`).
    """
    import uuid

    from google.api_core import exceptions as gexc

    token, held = uuid.uuid4().hex, list[str]()
    for _ in range(_ATTEMPTS):
        try:
            run, snapshot = load(tenant, experiment_id, run_id)
        except RunGone:
            return "gone"
        run.token, run.held, run.given = token, held, given or {}
        if run.data.get("status") in FINAL:
            _effects(run)  # a crash after the final write may have left the label unset
            return "final"
        _effects(run)
        pending = _unfinished(run)
        if pending:
            return f"waiting for {len(pending)} job(s)"
        try:
            results = _claimed_results(run)
            step = _next(run, results)
            _write(run, snapshot, step)
        except claims.Claimed:
            return "claimed elsewhere"  # another delivery is making this step's optimizer calls
        except (gexc.FailedPrecondition, gexc.Aborted, gexc.Conflict):
            continue  # another delivery moved the run first: look again
        except BaseException:
            for key in held:  # the redelivery of this message claims the step again
                claims.release(run.ref, key, token)
            raise
        run.data.update(step.fields)
        run.data["state"] = step.state
        for cid, fields in step.candidates.items():  # as merged into the candidate documents
            if cid in run.docs or "output_prompt" in fields:  # a new candidate's document is all here
                run.docs[cid] = {**run.docs.get(cid, {}), **fields}
        run.jobs = {}  # the new step's jobs: none is created yet (creating them is idempotent)
        _effects(run, written=True)
        if run.data.get("status") in FINAL or run.state.get("waiting"):
            return str(run.state.get("phase"))
    return "contended"


# --- reading the step's jobs ------------------------------------------------------------------


def _job_states(run: Run) -> dict[str, tuple[str, dict[str, Any]] | None]:
    """The states of the jobs the run waits for, in one batched read of those not given (`Run.given`)."""
    known = {job_id: g.job for job_id, g in run.given.items() if g.job is not None}
    return run_jobs.states(run.tenant, list(run.state.get("waiting") or {}), known=known)


def _unfinished(run: Run) -> list[str]:
    if set(run.jobs) != set(run.state.get("waiting") or {}):  # not read by _ensure_jobs just now
        run.jobs = _job_states(run)
    return [j for j, found in run.jobs.items() if found is None or not run_jobs.finished(found[1])]


def _claim_step(run: Run) -> None:
    """Claim the transition out of the current step (raises `claims.Claimed` if another delivery has).

    A step's jobs often finish together, and each one's completion advances the run: without a
    claim every one of them reads all the jobs' results and computes the same next step, and only
    one write wins. A holder that dies leaves the claim to expire (see `claims`).

    A step that waits for one job is not claimed (one write fewer on the run's critical path): only
    a duplicate delivery computes it twice, the conditional write still lets one transition win,
    and the optimizer calls it may lead to are claimed on their own (`_propose`).
    """
    import hashlib

    waiting = sorted(run.state.get("waiting") or {})
    if len(waiting) == 1:
        return
    key = "step-" + hashlib.sha256("\0".join(waiting).encode()).hexdigest()[:24] if waiting else "step-start"
    claims.claim(run.ref, key, run.token, now=now())
    run.held.append(key)


def _results(run: Run) -> dict[str, run_jobs.JobResult]:
    """The finished jobs of the current step, by job id (read at once, one thread per job)."""
    from concurrent.futures import ThreadPoolExecutor

    metric = run.config["metric"]["name"]
    waiting = run.state.get("waiting") or {}

    def read(job_id: str) -> run_jobs.JobResult:
        found = run.jobs.get(job_id) or run_jobs.state(run.tenant, job_id)
        assert found is not None  # _unfinished checked
        rows = int(waiting[job_id]["rows"])
        given = run.given.get(job_id)  # a step needs scores and cost per row, not the answers
        return run_jobs.read_result(run.tenant, job_id, found[1], metric, rows, given=given, outputs=False)

    if len(waiting) <= 1:
        return {job_id: read(job_id) for job_id in waiting}
    with ThreadPoolExecutor(max_workers=min(_IO_THREADS, len(waiting))) as pool:
        return dict(zip(waiting, pool.map(read, waiting), strict=True))


# --- transitions ------------------------------------------------------------------------------


def _claimed_results(run: Run) -> dict[str, run_jobs.JobResult]:
    """Claim the step (see `_claim_step`), then read its jobs' results and return them.

    The claim comes first: when a step's jobs finish together, every delivery but one loses it,
    and reading every job's rows for nothing would take the winner's CPU (on a small instance
    the losers' reads slowed the winner's transition by tens of milliseconds).
    """
    _claim_step(run)
    if run.state.get("phase", "start") == "start":
        return {}
    return _results(run)


def _next(run: Run, results: dict[str, run_jobs.JobResult]) -> Step:
    """The step after the current one, from its jobs' `results`."""
    state = dict(run.state)
    phase = state.get("phase", "start")
    step = Step(state=state)
    _account(run, step, results)
    if any(r.status == "budget_exhausted" for r in results.values()):
        # A job stopped at the run's budget or the tenant's spending cap: its rows are partial, so
        # nothing is compared on them; the run ends with what it measured before (baseline and best
        # validation scores).
        if any(r.stop_reason == "budget:spending_cap" for r in results.values()):
            why = "spending_cap: the tenant's monthly spending cap was reached"
        else:
            why = "the run's budget ran out"
        _finish(run, step, "budget_exhausted", f"{why} during its {phase} step")
        return step
    if phase == "start":
        _begin(run, step)
    elif phase == "baseline":
        _after_baseline(run, step, results)
    elif phase == "screen":
        _after_screen(run, step, results)
    elif phase == "validate":
        _after_validate(run, step, results)
    elif phase == "final":
        _after_final(run, step, results)
    elif phase == "regress":
        _after_regress(run, step, results)
    else:
        _finish(run, step, "failed", f"unknown step {phase!r}")
    return step


def _account(run: Run, step: Step, results: dict[str, run_jobs.JobResult]) -> None:
    usage = dict(run.data.get("usage") or {})
    for result in results.values():
        u = result.usage
        usage["task_calls"] = int(usage.get("task_calls", 0) + u["calls"] - u["judge_calls"])
        usage["judge_calls"] = int(usage.get("judge_calls", 0) + u["judge_calls"])
        usage["cache_hits"] = int(usage.get("cache_hits", 0) + u["cache_hits"])
        usage["input_tokens"] = int(usage.get("input_tokens", 0) + u["input_tokens"])
        usage["output_tokens"] = int(usage.get("output_tokens", 0) + u["output_tokens"])
        usage["cost_usd"] = round(float(usage.get("cost_usd", 0.0)) + u["cost_usd"], 8)
        if result.status in ("failed", "cancelled"):
            step.event("job", f"evaluation job {result.job_id} ended {result.status}")
    step.fields["usage"] = usage


def _begin(run: Run, step: Step) -> None:
    cfg = run.config
    step.state.update(
        {"iteration": 0, "rung": 0, "no_improve": 0, "seq": step.state.get("seq", 0), "cands": {}}
    )
    base = {
        "strategy": "baseline",
        "parent": None,
        "iteration": 0,
        "status": "baseline",
        "version": cfg["prompt_version"],
        "rung_means": [],
    }
    step.state["cands"] = {BASELINE: base}
    step.candidates[BASELINE] = {
        "candidate_id": BASELINE,
        "system_prompt": cfg["system_prompt"],
        "output_prompt": cfg["output_prompt"],
        "strategy": "baseline",
        "parent": None,
        "iteration": 0,
        "critique": "",
        "shown_rows": [],
    }
    step.fields["status"] = "running"
    step.fields["started_at"] = now()
    if cfg["mode"] == "regression":
        _dispatch(run, step, "regress", [(BASELINE, "report", run.rows("report"), "report")])
        return
    # The baseline evaluates two splits and the final step the third: read all three at once now
    # (rows are cached per process), rather than one after another on the run's critical path.
    _read_splits(run, ("accept", "optimize", "report"))
    jobs = [
        (BASELINE, "accept", run.rows("accept"), "accept"),
        (BASELINE, "optimize", run.rung_rows(1, 0), "optimize-1-0"),
    ]
    _dispatch(run, step, "baseline", jobs)


def _read_splits(run: Run, purposes: tuple[str, ...]) -> None:
    """Read the rows of several splits at once (see `Run.rows`; each read is cached per process)."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(purposes)) as pool:
        for purpose in purposes:
            # A failed read is not an error here: the step that needs those rows reads them again.
            pool.submit(contextvars.copy_context().run, run.rows, purpose)


def _candidate_texts(run: Run, step: Step, cid: str) -> tuple[str, str]:
    """A candidate's prompt: from this step's writes if it is new, else from its document."""
    doc = step.candidates.get(cid) or {}
    if "output_prompt" not in doc:
        doc = _candidate_doc(run, cid)
    return str(doc.get("system_prompt") or ""), str(doc.get("output_prompt") or "")


def _candidate_doc(run: Run, cid: str) -> dict[str, Any]:
    """A candidate's document, read once per transition."""
    if cid not in run.docs:
        run.docs[cid] = paths.candidates(run.ref).document(cid).get().to_dict() or {}
    return run.docs[cid]


def _prefetch(run: Run, cids: list[str]) -> None:
    """Read the documents of `cids` not yet read in one batched read (they are then cached)."""
    wanted = [c for c in dict.fromkeys(cids) if c not in run.docs]
    if not wanted:
        return
    refs = [paths.candidates(run.ref).document(c) for c in wanted]
    for snapshot in run.ref._client.get_all(refs):
        run.docs[snapshot.id] = snapshot.to_dict() or {}
    for cid in wanted:
        run.docs.setdefault(cid, {})


def _dispatch(run: Run, step: Step, phase: str, jobs: list[tuple[str, str, tuple[Row, ...], str]]) -> None:
    """Set the step's jobs (if the budget allows them); else finish with what is known."""
    planned = sum(len(rows) for _, _, rows, _ in jobs)
    reason = _over_budget(run, step, planned * calls_per_row(run.config))
    if reason is not None:
        if phase not in ("final", "regress") and run.config["mode"] == "optimize":
            step.event("budget", f"{reason}; the search stops and the best so far is tested")
            step.state["budget_stop"] = reason
            _to_final(run, step)
            return
        _finish(run, step, "budget_exhausted", reason)
        return
    waiting: dict[str, dict[str, Any]] = {}
    _prefetch(run, [cid for cid, _, _, _ in jobs if "output_prompt" not in step.candidates.get(cid, {})])
    for cid, purpose, rows, tag in jobs:
        system_prompt, output_prompt = _candidate_texts(run, step, cid)
        spec = run_jobs.JobSpec(
            key=f"{run.run_id}/{cid}/{tag}",
            candidate=cid,
            purpose=purpose,
            system_prompt=system_prompt,
            output_prompt=output_prompt,
            rows=rows,
        )
        request = run_jobs.request(spec, run.config)
        job_id = run_jobs.job_id(run.tenant, spec, run.config, request=request)
        run.requests[job_id] = request
        waiting[job_id] = {"candidate": cid, "purpose": purpose, "rows": len(rows), "tag": tag}
    step.state["phase"] = phase
    step.state["waiting"] = waiting
    step.fields["step"] = _describe(step.state, len(jobs), planned)
    step.event("step", step.fields["step"])


def _describe(state: dict[str, Any], n_jobs: int, rows: int) -> str:
    phase, it = state.get("phase"), state.get("iteration", 0)
    if phase == "baseline":
        return f"baseline: evaluating the base prompt ({rows} rows)"
    if phase == "screen":
        return f"iteration {it}: screening rung {state.get('rung', 0) + 1} ({n_jobs} candidates, {rows} rows)"
    if phase == "validate":
        look = ", first look" if state.get("look") else ""
        return f"iteration {it}: validating {n_jobs} candidate(s) on the accept split{look} ({rows} rows)"
    if phase == "final":
        return f"final: baseline and best on the held-out report split ({rows} rows)"
    if phase == "regress":
        return f"regression check: evaluating the labelled version ({rows} rows)"
    return str(phase)


def _over_budget(run: Run, step: Step, planned_calls: int) -> str | None:
    """Why dispatching `planned_calls` more task calls could pass the run's budget (None: it fits)."""
    from promptopt.spend import caps

    cap_stop = caps.stop_reason(run.tenant)  # the tenant's monthly spending cap is reached
    if cap_stop is not None:
        return cap_stop
    budget = run.data.get("budget") or {}
    usage = step.fields.get("usage") or run.data.get("usage") or {}
    calls = int(usage.get("task_calls", 0)) + int(usage.get("optimizer_calls", 0))
    calls += int(usage.get("judge_calls", 0))
    if budget.get("max_calls") is not None and calls + planned_calls > int(budget["max_calls"]):
        return f"max_calls {budget['max_calls']} would be passed ({calls} used, {planned_calls} planned)"
    per_call = run.data.get("per_call") or {}
    tokens = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
    planned_tokens = planned_calls * int(per_call.get("tokens", 0))
    if budget.get("max_tokens") is not None and tokens + planned_tokens > int(budget["max_tokens"]):
        return f"max_tokens {budget['max_tokens']} would be passed ({tokens} used)"
    if budget.get("max_cost_usd") is not None:
        cost = float(usage.get("cost_usd", 0.0))
        if cost + planned_calls * float(per_call.get("cost_usd", 0.0)) > float(budget["max_cost_usd"]):
            return f"max_cost_usd {budget['max_cost_usd']} would be passed (${cost:.4f} used)"
    return None


def calls_per_row(config: dict[str, Any]) -> int:
    """Model calls one evaluated row may cost: its task call and one per model-graded metric."""
    from promptopt.batch.judging import MODEL_GRADED

    metrics = [config["metric"], *config.get("secondary_metrics", [])]
    return 1 + sum(1 for m in metrics if m.get("name") in MODEL_GRADED)


def remaining_budget(run_budget: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """What is left of the run's budget, as a job budget (None: unlimited)."""
    left: dict[str, Any] = {}
    calls = int(usage.get("task_calls", 0)) + int(usage.get("optimizer_calls", 0))
    calls += int(usage.get("judge_calls", 0))
    tokens = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
    if run_budget.get("max_calls") is not None:
        left["max_calls"] = max(1, int(run_budget["max_calls"]) - calls)
    if run_budget.get("max_tokens") is not None:
        left["max_tokens"] = max(1, int(run_budget["max_tokens"]) - tokens)
    if run_budget.get("max_cost_usd") is not None:
        left["max_cost_usd"] = max(
            1e-9, float(run_budget["max_cost_usd"]) - float(usage.get("cost_usd", 0.0))
        )
    return left


def _by_candidate(run: Run, results: dict[str, run_jobs.JobResult]) -> dict[str, run_jobs.JobResult]:
    waiting = run.state.get("waiting") or {}
    return {waiting[job_id]["candidate"]: r for job_id, r in results.items()}


def _mean(scores: list[float]) -> float:
    return sum(scores) / len(scores) if scores else 0.0


def _ci(result: run_jobs.JobResult) -> dict[str, Any]:
    mean = result.mean if result.mean is not None else _mean(result.scores)
    return {
        "mean": mean,
        "ci_low": result.ci_low if result.ci_low is not None else mean,
        "ci_high": result.ci_high if result.ci_high is not None else mean,
        "n": len(result.scores),
    }


def _tokens_per_row(result: run_jobs.JobResult) -> float:
    """What a row's answer costs: the tie-break between equal candidates, the same in any delivery order."""
    if result.tokens_per_row is not None:
        return result.tokens_per_row
    n = max(1, len(result.scores))  # results written before rows recorded their answer's tokens
    return (result.usage["input_tokens"] + result.usage["output_tokens"]) / n


def _after_baseline(run: Run, step: Step, results: dict[str, run_jobs.JobResult]) -> None:
    cands = step.state["cands"]
    base = dict(cands[BASELINE])
    waiting = run.state["waiting"]
    for job_id, result in results.items():
        purpose = waiting[job_id]["purpose"]
        if purpose == "accept":
            base["accept"] = _ci(result)
            base["accept_job"] = job_id
            base["secondary"] = result.secondary
            base["tokens_per_row"] = _tokens_per_row(result)
            step.candidates[BASELINE] = {"accept_scores": result.scores}
        else:
            base["examples_job"] = job_id
            base["examples_tag"] = waiting[job_id]["tag"]
            base["rung_means"] = [_mean(result.scores)]
        _learn_cost(run, step, result)
    if any(r.status in ("failed", "cancelled") for r in results.values()):
        _finish(run, step, "failed", "the baseline evaluation did not complete")
        return
    base["status"] = "validated"
    base["verdict"] = "baseline"
    cands[BASELINE] = base
    step.state.update({"incumbent": BASELINE, "validated": [BASELINE], "frontier": {BASELINE: 1}})
    step.fields["baseline"] = base["accept"]
    step.fields["best"] = base["accept"]
    step.fields["best_version"] = run.config["prompt_version"]
    _propose(run, step, iteration=1)


def _learn_cost(run: Run, step: Step, result: run_jobs.JobResult) -> None:
    """Observed tokens and cost per call (the larger seen so far), for budget checks before dispatch."""
    calls = max(1.0, result.usage["calls"])
    per_call = dict(step.fields.get("per_call") or run.data.get("per_call") or {})
    tokens = (result.usage["input_tokens"] + result.usage["output_tokens"]) / calls
    per_call["tokens"] = max(int(per_call.get("tokens", 0)), math.ceil(tokens))
    per_call["cost_usd"] = max(float(per_call.get("cost_usd", 0.0)), result.usage["cost_usd"] / calls)
    step.fields["per_call"] = per_call


def _propose(run: Run, step: Step, *, iteration: int) -> None:
    from promptopt.experiments import propose

    plan = run.plan
    if iteration > plan.iterations:
        step.event("stop", f"all {plan.iterations} iterations done")
        _to_final(run, step)
        return
    budget_reason = _over_budget(run, step, plan.candidates)
    if budget_reason is not None:
        step.event("budget", f"{budget_reason}; no more proposals")
        step.state["budget_stop"] = budget_reason
        _to_final(run, step)
        return
    step.state.update({"iteration": iteration, "rung": 0})
    # Optimizer calls cost money: only the delivery that claims this iteration's proposals makes them.
    key = f"propose-{iteration:03d}"
    claims.claim(run.ref, key, run.token, now=now())
    run.held.append(key)
    proposals = propose.candidates(run, step, iteration=iteration)
    usage = step.fields["usage"]
    usage["optimizer_calls"] = int(usage.get("optimizer_calls", 0)) + proposals.calls
    usage["input_tokens"] = int(usage.get("input_tokens", 0)) + proposals.input_tokens
    usage["output_tokens"] = int(usage.get("output_tokens", 0)) + proposals.output_tokens
    usage["cost_usd"] = round(float(usage.get("cost_usd", 0.0)) + proposals.cost_usd, 8)
    # The optimizer's own share, for usage reports (task calls are the run's jobs' figures).
    usage["optimizer_input_tokens"] = int(usage.get("optimizer_input_tokens", 0)) + proposals.input_tokens
    usage["optimizer_output_tokens"] = int(usage.get("optimizer_output_tokens", 0)) + proposals.output_tokens
    usage["optimizer_cost_usd"] = round(float(usage.get("optimizer_cost_usd", 0.0)) + proposals.cost_usd, 8)
    from promptopt.spend import ledger

    ledger.record(run.tenant, cost_usd=proposals.cost_usd, calls=proposals.calls)
    for reason in proposals.rejected:
        step.event("rejected", f"iteration {iteration}: optimizer reply rejected ({reason})")
    alive = list(proposals.accepted)
    step.state["alive"] = alive
    if not alive:
        step.event("iteration", f"iteration {iteration}: no usable proposal")
        _end_iteration(run, step, accepted=[])
        return
    rows = run.rung_rows(iteration, 0)
    _dispatch(run, step, "screen", [(c, "optimize", rows, f"optimize-{iteration}-0") for c in alive])


def _after_screen(run: Run, step: Step, results: dict[str, run_jobs.JobResult]) -> None:
    from promptopt.experiments.selection import keep_best

    iteration, rung = int(step.state["iteration"]), int(step.state["rung"])
    cands = step.state["cands"]
    by_cand = _by_candidate(run, results)
    means: dict[str, float] = {}
    cost: dict[str, float] = {}
    secondary: dict[str, float] = {}
    waiting = run.state["waiting"]
    tags = {w["candidate"]: (job_id, w["tag"]) for job_id, w in waiting.items()}
    for cid, result in by_cand.items():
        entry = dict(cands[cid])
        entry["rung_means"] = [*entry.get("rung_means", []), _mean(result.scores)]
        entry["examples_job"], entry["examples_tag"] = tags[cid]
        entry["tokens_per_row"] = _tokens_per_row(result)
        cands[cid] = entry
        _learn_cost(run, step, result)
        if result.status not in ("failed", "cancelled"):
            means[cid] = _mean(result.scores)
            cost[cid] = entry["tokens_per_row"]
            if result.secondary:  # ties go to the better first secondary metric, then fewer tokens
                secondary[cid] = next(iter(result.secondary.values()))
    alive = [c for c in step.state.get("alive", []) if c in means]
    for cid in set(step.state.get("alive", [])) - set(alive):
        cands[cid] = {**cands[cid], "status": "failed", "verdict": "its screening job did not complete"}
    if not alive:
        _end_iteration(run, step, accepted=[])
        return
    last_rung = rung + 1 >= len(run.plan.rungs)
    if len(alive) <= SURVIVORS or last_rung:
        validated = min(run.plan.survivors, len(alive))
        survivors = keep_best({c: means[c] for c in alive}, validated, secondary=secondary, cost=cost)
        for cid in alive:
            if cid not in survivors:
                cands[cid] = {
                    **cands[cid],
                    "status": "pruned",
                    "verdict": f"pruned at rung {rung + 1} ({means[cid]:.3f}; {validated} validated)",
                }
        step.state["alive"] = survivors
        _validate(run, step, survivors, look=run.plan.validation_look > 0)
        return
    keep = keep_best({c: means[c] for c in alive}, math.ceil(len(alive) / 2), secondary=secondary, cost=cost)
    for cid in alive:
        if cid not in keep:
            cands[cid] = {
                **cands[cid],
                "status": "pruned",
                "verdict": f"pruned at rung {rung + 1} ({means[cid]:.3f})",
            }
    step.state["alive"] = keep
    step.state["rung"] = rung + 1
    rows = run.rung_rows(iteration, rung + 1)
    _dispatch(run, step, "screen", [(c, "optimize", rows, f"optimize-{iteration}-{rung + 1}") for c in keep])


def _validate(run: Run, step: Step, cids: list[str], *, look: bool) -> None:
    """Validate `cids` on the accept rows: the first look's rows, or all of them."""
    rows = run.rows("accept")
    if look:
        rows = rows[: run.plan.validation_look]
    step.state["look"] = look
    tag = "accept-look" if look else "accept"
    _dispatch(run, step, "validate", [(c, "accept", rows, tag) for c in cids])


def _accept_scores(run: Run, step: Step, cid: str) -> list[float]:
    if cid in step.candidates and "accept_scores" in step.candidates[cid]:
        return list(step.candidates[cid]["accept_scores"])
    doc = _candidate_doc(run, cid)
    return [float(v) for v in doc.get("accept_scores") or []]


def _after_validate(run: Run, step: Step, results: dict[str, run_jobs.JobResult]) -> None:
    from promptopt.experiments.selection import accepts, paired_lift

    cands = step.state["cands"]
    incumbent = step.state["incumbent"]
    incumbent_scores = _accept_scores(run, step, incumbent)
    min_improvement = float(run.config["optimizer"]["min_improvement"])
    seed = int(run.config["optimizer"]["seed"])
    if step.state.get("look"):
        _after_look(run, step, results, incumbent_scores[: run.plan.validation_look])
        return
    accepted: list[tuple[float, str]] = []
    job_of = {w["candidate"]: job_id for job_id, w in run.state["waiting"].items()}
    for cid, result in _by_candidate(run, results).items():
        entry = dict(cands[cid])
        _learn_cost(run, step, result)
        if result.status in ("failed", "cancelled") or len(result.scores) != len(incumbent_scores):
            entry.update(status="failed", verdict="its validation job did not complete")
            cands[cid] = entry
            continue
        lift = paired_lift(result.scores, incumbent_scores, seed=seed)
        entry.update(
            status="validated",
            accept=_ci(result),
            accept_job=job_of[cid],
            secondary=result.secondary,
            lift={"mean": lift.mean, "ci_low": lift.ci_low, "ci_high": lift.ci_high, "n": lift.n},
        )
        if accepts(lift, min_improvement):
            entry["verdict"] = (
                f"accepted: {lift.mean:+.3f} over {incumbent} "
                f"(95% CI {lift.ci_low:+.3f}..{lift.ci_high:+.3f})"
            )
            accepted.append((lift.mean, cid))
        else:
            entry["verdict"] = (
                f"not accepted: {lift.mean:+.3f} over {incumbent}, CI lower bound {lift.ci_low:+.3f} "
                f"not above {min_improvement}"
            )
        cands[cid] = entry
        step.candidates[cid] = {"accept_scores": result.scores}
        step.state["validated"] = [*step.state.get("validated", []), cid]
        step.state.setdefault("versions_due", [])
        step.state["versions_due"] = [*step.state["versions_due"], cid]
    ranked = [cid for _, cid in sorted(accepted, reverse=True)]
    for cid in ranked[1:]:  # only the best becomes the incumbent
        cands[cid] = {
            **cands[cid],
            "verdict": (
                f"passed: {cands[cid]['verdict'].removeprefix('accepted: ')}; "
                f"a better candidate ({ranked[0]}) was accepted instead"
            ),
        }
    _end_iteration(run, step, accepted=ranked)


def _after_look(
    run: Run, step: Step, results: dict[str, run_jobs.JobResult], incumbent_scores: list[float]
) -> None:
    """After validation's first look: stop the candidates it rules out, validate the rest fully."""
    from promptopt.experiments.selection import futile, paired_lift

    cands = step.state["cands"]
    min_improvement = float(run.config["optimizer"]["min_improvement"])
    seed = int(run.config["optimizer"]["seed"])
    going: list[str] = []
    for cid, result in _by_candidate(run, results).items():
        _learn_cost(run, step, result)
        entry = dict(cands[cid])
        if result.status in ("failed", "cancelled") or len(result.scores) != len(incumbent_scores):
            entry.update(status="failed", verdict="its validation job did not complete")
        else:
            lift = paired_lift(result.scores, incumbent_scores, seed=seed)
            entry["lift"] = {"mean": lift.mean, "ci_low": lift.ci_low, "ci_high": lift.ci_high, "n": lift.n}
            if futile(lift, min_improvement):
                entry.update(
                    status="stopped",
                    verdict=(
                        f"not accepted: stopped after {lift.n} of {run.plan.validation_rows} "
                        f"validation rows, {lift.mean:+.3f} over {step.state['incumbent']} "
                        f"(95% CI {lift.ci_low:+.3f}..{lift.ci_high:+.3f}) cannot clear {min_improvement}"
                    ),
                )
            else:
                going.append(cid)
        cands[cid] = entry
    step.state["alive"] = going
    if not going:
        _end_iteration(run, step, accepted=[])
        return
    _validate(run, step, going, look=False)


def _end_iteration(run: Run, step: Step, *, accepted: list[str]) -> None:
    from promptopt.experiments.selection import pareto_front
    from promptopt.experiments.strategies import Bandit

    cands = step.state["cands"]
    iteration = int(step.state.get("iteration", 0))
    if step.state.get("bandit") is not None:
        bandit = Bandit.from_dict(step.state["bandit"])
        for entry in cands.values():
            if entry.get("iteration") == iteration and entry.get("strategy") in bandit.arms:
                # Gain per proposal: its paired lift over the incumbent (0 when pruned or rejected).
                gain = max(0.0, float((entry.get("lift") or {}).get("mean", 0.0)))
                bandit.update(entry["strategy"], gain, 1)
        step.state["bandit"] = bandit.to_dict()
    if accepted:
        best = accepted[0]
        cands[best] = {**cands[best], "accepted": True}
        step.state["incumbent"] = best
        step.state["no_improve"] = 0
        step.fields["best"] = cands[best]["accept"]
        step.event(
            "accepted", f"iteration {iteration}: {best} becomes the incumbent ({cands[best]['verdict']})"
        )
    else:
        step.state["no_improve"] = int(step.state.get("no_improve", 0)) + 1
        step.event("iteration", f"iteration {iteration}: no candidate accepted")
    validated = step.state.get("validated", [BASELINE])
    _prefetch(run, [c for c in validated if "accept_scores" not in step.candidates.get(c, {})])
    scores = {cid: _accept_scores(run, step, cid) for cid in validated}
    step.state["frontier"] = pareto_front(scores) or {step.state["incumbent"]: 1}
    patience = int(run.config["optimizer"]["patience"])
    if int(step.state["no_improve"]) >= patience:
        step.event("stop", f"no improvement for {patience} iteration(s)")
        _to_final(run, step)
        return
    _propose(run, step, iteration=iteration + 1)


def _to_final(run: Run, step: Step) -> None:
    incumbent = step.state.get("incumbent", BASELINE)
    rows = run.rows("report")
    jobs = [(BASELINE, "report", rows, "report")]
    if incumbent != BASELINE:
        jobs.append((incumbent, "report", rows, "report"))
    if not rows:
        _finish(run, step, "completed", "the report split has no rows; no held-out score")
        return
    _dispatch(run, step, "final", jobs)


def _after_final(run: Run, step: Step, results: dict[str, run_jobs.JobResult]) -> None:
    from promptopt.experiments.selection import paired_lift

    by_cand = _by_candidate(run, results)
    for result in results.values():
        _learn_cost(run, step, result)
    incumbent = step.state.get("incumbent", BASELINE)
    base = by_cand.get(BASELINE)
    best = by_cand.get(incumbent, base)
    if (
        base is None
        or best is None
        or base.status in ("failed", "cancelled")
        or best.status in ("failed", "cancelled")
    ):
        _finish(run, step, "failed", "the final evaluation on the report split did not complete")
        return
    step.fields["baseline_test"] = _ci(base)
    step.fields["best_test"] = _ci(best)
    lift = paired_lift(best.scores, base.scores, seed=int(run.config["optimizer"]["seed"]))
    step.fields["lift"] = {"mean": lift.mean, "ci_low": lift.ci_low, "ci_high": lift.ci_high, "n": lift.n}
    version = (step.state["cands"].get(incumbent) or {}).get("version")
    step.fields["best_candidate"] = incumbent
    improved = incumbent != BASELINE and lift.ci_low > 0
    if improved and run.config.get("promote_label"):
        step.state["promote"] = {"label": run.config["promote_label"], "candidate": incumbent}
    summary = (
        f"best {incumbent} (version {version}): test {best.mean if best.mean is not None else 0:.3f} vs "
        f"baseline {base.mean if base.mean is not None else 0:.3f}, paired lift {lift.mean:+.3f} "
        f"(95% CI {lift.ci_low:+.3f}..{lift.ci_high:+.3f})"
    )
    budget_stop = step.state.get("budget_stop")
    if budget_stop:
        _finish(run, step, "budget_exhausted", f"{budget_stop}; {summary}")
    else:
        _finish(run, step, "completed", summary)


def _after_regress(run: Run, step: Step, results: dict[str, run_jobs.JobResult]) -> None:
    from promptopt.experiments import regression

    (result,) = results.values()
    _learn_cost(run, step, result)
    if result.status in ("failed", "cancelled"):
        _finish(run, step, "failed", "the regression evaluation did not complete")
        return
    step.fields["best_test"] = _ci(result)
    step.fields["report_scores"] = result.scores
    status, reason, lift = regression.compare(run, result.scores)
    if lift is not None:
        step.fields["lift"] = lift
    if status == "regressed":
        step.state["alert"] = {"reason": reason}
    _finish(run, step, status, reason)


def _finish(run: Run, step: Step, status: str, reason: str) -> None:
    step.state["phase"] = "done"
    step.state["waiting"] = {}
    step.fields.update(status=status, reason=reason, finished_at=now(), step="finished", progress=1.0)
    step.event("finished", f"{status}: {reason}")
    # Counted by the run-state log-based metric (terraform/modules/monitoring).
    log.info(
        "run %s finished: %s", run.run_id, status, extra={"fields": {"run_id": run.run_id, "status": status}}
    )


# --- writing ------------------------------------------------------------------------------------


def _write(run: Run, snapshot: Any, step: Step) -> None:
    """The new state, candidates and events in one batch, conditional on the run being unchanged.

    A step's event (kind "step", written when the step starts) also gets, when the step ends, its
    `ended_at` and `jobs_done_at` (the last of its jobs to finish, scoring included), so a run's
    critical path can be read from its events: step start → jobs done → next step.
    """
    client = run.ref._client
    batch = client.batch()
    stamp = now()
    seq = int(step.state.get("seq", 0))
    ending = run.state.get("step_event")  # the event of the step this transition ends
    step.state["step_event"] = None
    for kind, message in step.events:
        seq += 1
        event: dict[str, Any] = {"at": stamp, "kind": kind, "message": message}
        if kind == "step":
            step.state["step_event"] = seq
            event.update(
                phase=step.state.get("phase"),
                iteration=int(step.state.get("iteration", 0)),
                rung=int(step.state.get("rung", 0)),
                jobs=len(step.state.get("waiting") or {}),
            )
        batch.set(paths.events(run.ref).document(f"{seq:06d}"), event)
    step.state["seq"] = seq
    if ending:
        timing: dict[str, Any] = {"ended_at": stamp}
        found = list(run.jobs.values())
        done = [f[1]["finished_at"] for f in found if f is not None and f[1].get("finished_at")]
        if done and len(done) == len(found):
            timing["jobs_done_at"] = max(done)
        batch.set(paths.events(run.ref).document(f"{int(ending):06d}"), timing, merge=True)
    for cid, fields in step.candidates.items():
        batch.set(paths.candidates(run.ref).document(cid), fields, merge=True)
    update = {**step.fields, "state": step.state, "updated_at": stamp, "progress": _progress(run, step)}
    if step.fields.get("status") in FINAL:
        update["progress"] = 1.0
    batch.update(run.ref, update, option=client.write_option(last_update_time=snapshot.update_time))
    if step.fields.get("status") in FINAL:
        experiment = paths.experiment_ref(run.tenant, run.experiment_id)
        batch.set(
            experiment,
            {
                "active_run_id": None,
                "last_run_id": run.run_id,
                "last_run_status": step.fields["status"],
                "updated_at": stamp,
            },
            merge=True,
        )
    elif step.fields.get("status") == "running":
        experiment = paths.experiment_ref(run.tenant, run.experiment_id)
        batch.set(experiment, {"last_run_status": "running", "updated_at": stamp}, merge=True)
    batch.commit()


def _progress(run: Run, step: Step) -> float:
    plan = run.plan
    if plan.mode == "regression":
        return 0.5
    total = 2 + plan.iterations * (len(plan.rungs) + 1)
    phase = step.state.get("phase")
    it = int(step.state.get("iteration", 0))
    per_iteration = len(plan.rungs) + 1
    done = 0
    if phase == "screen":
        done = 1 + (it - 1) * per_iteration + int(step.state.get("rung", 0))
    elif phase == "validate":
        done = 1 + (it - 1) * per_iteration + len(plan.rungs)
    elif phase == "final":
        done = total - 1
    return round(min(1.0, done / total), 3)


# --- effects (idempotent; repeated by every advance until done) ---------------------------------


def _effects(run: Run, *, written: bool = False) -> None:
    """`written`: this delivery has just written the state (so knows that none of its jobs exists yet)."""
    state = run.state
    _ensure_jobs(run, written=written)
    if state.get("versions_due"):
        _ensure_versions(run)
    if state.get("promote") and not state.get("promoted"):
        _promote(run)
    if state.get("alert") and not state.get("alerted"):
        from promptopt.experiments import regression

        regression.alert(run)
        run.ref.update({"state.alerted": True})


def _ensure_jobs(run: Run, *, written: bool = False) -> None:
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    from promptopt.errors import ApiError

    if run.data.get("status") in FINAL:
        return
    waiting = run.state.get("waiting") or {}
    if written:  # the step was written by this delivery: none of its jobs can exist yet
        missing = dict(waiting)
    else:
        run.jobs = _job_states(run)  # _unfinished uses it
        missing = {j: m for j, m in waiting.items() if run.jobs.get(j) is None}
    if not missing:
        return
    # Cancelled meanwhile: start nothing. The delivery that has just written the step checks after
    # creating its jobs instead (below), which also covers a cancel made while it creates them.
    if not written and (run.ref.get().to_dict() or {}).get("status") in FINAL:
        return
    budget = remaining_budget(run.data.get("budget") or {}, run.data.get("usage") or {})
    _prefetch(run, [m["candidate"] for m in missing.values()])

    def create(job_id: str, meta: dict[str, Any]) -> None:
        system_prompt, output_prompt = _stored_texts(run, meta["candidate"])
        rows = _rows_for(run, meta)
        spec = run_jobs.JobSpec(
            key=f"{run.run_id}/{meta['candidate']}/{meta['tag']}",
            candidate=meta["candidate"],
            purpose=meta["purpose"],
            system_prompt=system_prompt,
            output_prompt=output_prompt,
            rows=rows,
        )
        created = run_jobs.create(
            run.tenant,
            run.experiment_id,
            run.run_id,
            spec,
            run.config,
            budget,
            missing=True,
            request=run.requests.get(job_id),
        )
        if created != job_id:  # the body is rebuilt from the same inputs, so this means a bug
            log.error("run %s: job %s was created as %s", run.run_id, job_id, created)

    # The step's jobs are independent (each create is idempotent): create them at once.
    with ThreadPoolExecutor(max_workers=min(_IO_THREADS, len(missing))) as pool:
        futures = {
            pool.submit(contextvars.copy_context().run, create, job_id, meta): meta
            for job_id, meta in missing.items()
        }
    if written and (run.ref.get().to_dict() or {}).get("status") in FINAL:  # cancelled meanwhile
        run_jobs.cancel(run.tenant, run.experiment_id, list(missing))
        return
    refused: tuple[dict[str, Any], ApiError] | None = None
    for future, meta in futures.items():
        error = future.exception()
        if isinstance(error, ApiError) and error.status < 500:
            refused = refused or (meta, error)
        elif error is not None:
            raise error  # transient: the step message is redelivered
    if refused is not None:
        meta, exc = refused
        fail(run, f"evaluation job for {meta['candidate']} was refused ({exc.code})")


def fail(run: Run, reason: str) -> bool:
    """End a run as failed with `reason` (unless it already ended); cancels its unfinished jobs."""
    from google.api_core import exceptions as gexc

    for _ in range(_ATTEMPTS):
        snapshot = run.ref.get()
        data = snapshot.to_dict() or {}
        if data.get("status") in FINAL:
            return False
        state = data.get("state") or {}
        step = Step(state={**state, "phase": "done", "waiting": {}})
        step.fields.update(status="failed", reason=reason, finished_at=now(), step="finished")
        step.event("failed", reason)
        try:
            _write(Run(run.tenant, run.experiment_id, run.run_id, run.ref, data), snapshot, step)
        except (gexc.FailedPrecondition, gexc.Aborted, gexc.Conflict):
            continue
        run_jobs.cancel(run.tenant, run.experiment_id, list(state.get("waiting") or {}))
        return True
    return False


def _stored_texts(run: Run, cid: str) -> tuple[str, str]:
    doc = _candidate_doc(run, cid)
    return str(doc.get("system_prompt") or ""), str(doc.get("output_prompt") or "")


def _rows_for(run: Run, meta: dict[str, Any]) -> tuple[Row, ...]:
    tag = str(meta["tag"])
    if tag.startswith("optimize-"):
        _, iteration, rung = tag.split("-")
        return run.rung_rows(int(iteration), int(rung))
    if tag == "accept-look":
        return run.rows("accept")[: run.plan.validation_look]
    return run.rows(str(meta["purpose"]))


def _ensure_versions(run: Run) -> None:
    """Every validated candidate becomes an immutable prompt version (found first if it exists)."""
    from promptopt.experiments import versions

    done: dict[str, int] = {}
    for cid in run.state.get("versions_due") or []:
        entry = (run.state.get("cands") or {}).get(cid) or {}
        if entry.get("version") is not None:
            continue
        done[cid] = versions.ensure(run, cid)
    fields: dict[str, Any] = {f"state.cands.{cid}.version": v for cid, v in done.items()}
    fields["state.versions_due"] = []
    run.ref.update(fields)
    for cid, version in done.items():
        run.state["cands"][cid]["version"] = version
    if run.state.get("incumbent") in done:
        run.ref.update({"best_version": done[run.state["incumbent"]]})
    run.state["versions_due"] = []


def _promote(run: Run) -> None:
    from promptopt.experiments import versions

    promote = run.state["promote"]
    versions.promote(run, promote["candidate"], promote["label"])
    run.ref.update({"state.promoted": True})


def random_for(run: Run, iteration: int) -> random.Random:
    """The seeded generator of one iteration's choices (parents, strategies): a run is reproducible."""
    return random.Random(f"{run.config['optimizer']['seed']}:{iteration}")  # noqa: S311
