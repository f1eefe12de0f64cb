"""A run's evaluations are ordinary batch evaluation jobs it owns.

Fan-out, cache, budgets and retries come from the batch domain, and a job's evaluation-completed
message advances the run.

Job ids are derived from (run, candidate, purpose, iteration, rung) and the body, so creating a
job again (a redelivered step, a sweep after a crash) finds the job instead of making another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptopt.auth import Principal, Role
from promptopt.errors import Conflict
from promptopt.experiments.rows import Row

if TYPE_CHECKING:
    from promptopt.batch.models import EvaluationCreate


@dataclass(frozen=True)
class JobSpec:
    """What one evaluation job of a run runs."""

    key: str  # the Idempotency-Key: run, candidate, purpose, iteration, rung
    candidate: str
    purpose: str  # optimize | accept | report
    system_prompt: str
    output_prompt: str
    rows: tuple[Row, ...]


def run_principal(tenant: str, experiment_id: str) -> Principal:
    """Who a run's jobs and versions are created by (shown as created_by)."""
    return Principal(subject=f"experiment:{experiment_id}", tenant=tenant, role=Role.editor)


def body(spec: JobSpec, config: dict[str, Any], budget: dict[str, Any]) -> EvaluationCreate:
    """The evaluation job's request, deterministic for a spec (so its id is too)."""
    from promptopt.batch.models import EvaluationCreate

    metrics = [config["metric"], *config.get("secondary_metrics", [])]
    return EvaluationCreate.model_validate(
        {
            "system_prompt": spec.system_prompt,
            "output_prompt": spec.output_prompt,
            "rows": [{"inputs": r.inputs, "reference": r.reference} for r in spec.rows],
            "model": config["target_model"],
            "temperature": config["temperature"],
            "max_tokens": config["max_tokens"],
            "metrics": metrics,
            "budget": _limits(budget),
            "cache": True,
        }
    )


def _limits(budget: dict[str, Any]) -> dict[str, Any]:
    """The limits a job's budget sets (unset ones left out)."""
    return {k: v for k, v in budget.items() if v is not None}


def request(spec: JobSpec, config: dict[str, Any]) -> EvaluationCreate:
    """The job's body without a budget: what its id is derived from."""
    return body(spec, config, {})


def job_id(
    tenant: str, spec: JobSpec, config: dict[str, Any], *, request: EvaluationCreate | None = None
) -> str:
    """The id the job will have (derived from its key and body; budget excluded, it may shrink).

    `request`: `request(spec, config)`, when the caller has built it already.
    """
    from promptopt.batch.jobs import new_job_id

    return new_job_id(tenant, request or body(spec, config, {}), spec.key)


def create(
    tenant: str,
    experiment_id: str,
    run_id: str,
    spec: JobSpec,
    config: dict[str, Any],
    budget: dict[str, Any],
    *,
    missing: bool = False,
    request: EvaluationCreate | None = None,
) -> str:
    """Create the job (or find it); returns its id. `missing`: the caller has just seen it absent.

    `request`: `request(spec, config)`, when the caller has built it already.
    """
    from promptopt.batch import jobs
    from promptopt.batch.models import Budget

    unlimited = request or body(spec, config, {})
    job_id_ = jobs.new_job_id(tenant, unlimited, spec.key)
    if not missing and jobs.paths.job_ref(tenant, job_id_).get().exists:
        return job_id_
    limited = unlimited.model_copy(update={"budget": Budget.model_validate(_limits(budget))})
    try:
        created = jobs.create_job(
            principal=run_principal(tenant, experiment_id),
            body=limited,
            idempotency_key=spec.key,
            owner={"experiment_id": experiment_id, "run_id": run_id, "candidate": spec.candidate},
            job_id=job_id_,
            absent=missing,
        )
    except Conflict as exc:
        if exc.code != "job_being_created":
            raise
        return job_id_  # a concurrent delivery of the same step is creating it: it exists
    return str(created["job_id"])


@dataclass(frozen=True)
class JobResult:
    """A finished job as a run reads it."""

    job_id: str
    status: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    scores: list[float]  # the primary metric per row, in the job's row order (None → 0)
    secondary: dict[str, float]
    outputs: list[str]
    usage: dict[str, float]
    stop_reason: str | None = None  # why the job stopped early (budget:spending_cap, budget:max_calls, ...)
    # Tokens per answered row as each answer cost when it was made (cached and shared rows
    # included), so it does not depend on delivery order; None for results that lack the figure.
    tokens_per_row: float | None = None


def state(tenant: str, job_id_: str) -> tuple[str, dict[str, Any]] | None:
    """(status, data) of a job, or None when it does not exist (yet)."""
    from promptopt.batch import paths

    snapshot = paths.job_ref(tenant, job_id_).get()
    if not snapshot.exists:
        return None
    data = snapshot.to_dict() or {}
    return str(data.get("status")), data


def states(
    tenant: str, job_ids: list[str], *, known: dict[str, dict[str, Any]] | None = None
) -> dict[str, tuple[str, dict[str, Any]] | None]:
    """`state` of several jobs in one batched read (None for each that does not exist yet).

    `known`: documents of some of them as their caller has just written them (not read again).
    """
    from promptopt.batch import paths

    found: dict[str, tuple[str, dict[str, Any]] | None] = dict.fromkeys(job_ids)
    known = {j: data for j, data in (known or {}).items() if j in found}
    for job_id_, data in known.items():
        found[job_id_] = (str(data.get("status")), data)
    unread = [j for j in job_ids if j not in known]
    if not unread:
        return found
    client = paths.job_ref(tenant, unread[0])._client
    for snapshot in client.get_all([paths.job_ref(tenant, j) for j in unread]):
        if snapshot.exists:
            data = snapshot.to_dict() or {}
            found[snapshot.id] = (str(data.get("status")), data)
    return found


def finished(data: dict[str, Any]) -> bool:
    """Whether a job is done with everything a run waits for (rows and, if any, scoring)."""
    from promptopt.batch.models import FINAL_STATUSES

    if data.get("status") not in FINAL_STATUSES:
        return False
    evaluation = data.get("evaluation") or {}
    # Scoring follows completed and budget_exhausted jobs; failed and cancelled ones are never scored.
    return data.get("status") in ("failed", "cancelled") or evaluation.get("status") in (
        "completed",
        "failed",
    )


@dataclass(frozen=True)
class GivenRows:
    """A finished job's rows and per-row scores, as the process that has just scored it holds them.

    What `read_result` would otherwise read back: the `scores/{metric}` documents (`per_row`,
    metric -> (row numbers, scores)) and each result's row, status, output and answer_tokens;
    `job`: the job's document as that process has just written it (finished and scored).
    """

    rows: list[dict[str, Any]]
    per_row: dict[str, tuple[list[int], list[float | None]]]
    job: dict[str, Any] | None = None


def read_result(
    tenant: str,
    job_id_: str,
    data: dict[str, Any],
    metric: str,
    n_rows: int,
    *,
    given: GivenRows | None = None,
    outputs: bool = True,
) -> JobResult:
    """Scores, outputs and usage of a finished job (`data`: its document; `given`: see GivenRows).

    `outputs=False`: without the answers (left empty), for a caller that needs only the scores and
    the cost per row: a job scored with its answer tokens summed is then read in one document.
    """
    scores: list[float] = [0.0] * n_rows
    if given is not None:
        scored, results, tokens = *_given(given, metric), None
    else:
        scored, results, tokens = _read_back(tenant, job_id_, metric, outputs=outputs)
    for row, value in scored:
        if 0 <= int(row) < n_rows:
            scores[int(row)] = float(value or 0.0)
    from promptopt.batch.scores import answer_tokens_of

    answers = [""] * n_rows
    kept = [(index, found) for index, found in results if 0 <= index < n_rows]
    for index, found in kept:
        answers[index] = str(found.get("output") or "")
    if tokens is None:  # not summed when the job was scored: from its results, the same way
        tokens = answer_tokens_of([found for _, found in kept])
    tokens_per_row = float(tokens["sum"]) / int(tokens["rows"]) if tokens["rows"] else None
    summaries = {m.get("name"): m for m in ((data.get("evaluation") or {}).get("metrics") or [])}
    primary = summaries.get(metric) or {}
    totals = data.get("totals") or {}
    return JobResult(
        job_id=job_id_,
        status=str(data.get("status")),
        mean=primary.get("mean"),
        ci_low=primary.get("ci_low"),
        ci_high=primary.get("ci_high"),
        scores=scores,
        secondary={str(k): float(v.get("mean") or 0.0) for k, v in summaries.items() if k != metric},
        outputs=answers,
        usage={
            "calls": float(totals.get("calls") or 0),
            "judge_calls": float(totals.get("judge_calls") or 0),
            "cache_hits": float(totals.get("cache_hits") or 0),
            "input_tokens": float(totals.get("input_tokens") or 0),
            "output_tokens": float(totals.get("output_tokens") or 0),
            "cost_usd": float(totals.get("cost_usd") or 0.0),
        },
        stop_reason=data.get("stop_reason"),
        tokens_per_row=tokens_per_row,
    )


Scored = list[tuple[int, float | None]]
Results = list[tuple[int, dict[str, Any]]]


def _read_back(
    tenant: str, job_id_: str, metric: str, *, outputs: bool = True
) -> tuple[Scored, Results, dict[str, Any] | None]:
    """The job's (row, score) pairs of `metric` and its results by row, from Firestore.

    `outputs=False`, when the scores document sums the answer tokens: those instead of the results.
    """
    from google.cloud.firestore_v1.field_path import FieldPath

    from promptopt.batch import paths

    ref = paths.job_ref(tenant, job_id_)
    doc = ref.collection("scores").document(metric).get()
    stored = (doc.to_dict() or {}) if doc.exists else {}
    scored = list(zip(stored.get("rows") or [], stored.get("values") or [], strict=False))
    tokens = stored.get("answer_tokens")
    if not outputs and isinstance(tokens, dict):
        return scored, [], tokens
    fields = ["output", "answer_tokens", "status"]
    query = paths.results(ref).order_by(FieldPath.document_id()).select(fields)
    return scored, [(int(snap.id), snap.to_dict() or {}) for snap in query.stream()], None


def _given(given: GivenRows, metric: str) -> tuple[Scored, Results]:
    """What `_read_back` would read, from the rows and scores at hand."""
    rows, values = given.per_row.get(metric, ([], []))
    return list(zip(rows, values, strict=False)), [(int(r["row"]), r) for r in given.rows]


def cancel(tenant: str, experiment_id: str, job_ids: list[str]) -> None:
    """Cancel a run's unfinished jobs (already final ones are left as they are)."""
    from promptopt.batch import jobs
    from promptopt.errors import ApiError

    for job_id_ in job_ids:
        try:
            jobs.cancel_job(principal=run_principal(tenant, experiment_id), job_id=job_id_)
        except ApiError:
            continue  # finished meanwhile, or never created
