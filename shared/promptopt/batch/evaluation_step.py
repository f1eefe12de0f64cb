"""The evaluation step: consume `batch-completed`, score the job's answers, write metrics onto it.

Push delivery is at-least-once, so the step de-duplicates by job id with a create-if-absent
marker (`markers/evaluation`) that holds a lease while it runs:

- no marker: create it and evaluate;
- marker done: a duplicate, acknowledged without work;
- marker running, lease live: another delivery is evaluating; raise so Pub/Sub redelivers this
  one later (acknowledging it could lose the message if that other delivery then crashed);
- marker running, lease expired: its holder crashed; take over (conditional write, one winner).

The chunk that completes an experiment run's job scores it itself (`finish_scored`): the job goes
from running straight to completed with its scores, the marker written done with them, in one
commit, and no batch-completed is published at all; the chunk then advances the run that owns the
job. Should that chunk die first, its task is retried and completes the job the usual way. If it
cannot score it there, the job is moved to evaluating as usual and scored by `evaluate(inline=True)`
(see `completion._carry_on`) or, failing that, through batch-completed.

Scoring: each metric over the rows that have a result. A failed row (the model refused, or its
retries ran out) scores 0; a row without a reference, or whose reference does not suit the metric
(a numeric reference without a number), is left out of that metric (its `n` says how many count).
Means come with 95% confidence intervals (Wilson for 0/1 scores, bootstrap otherwise).

llm_judge and embedding_similarity make no call here: the chunk that answered a row had it graded
and wrote the verdict on the row (see `judging`). A verdict without a grade (a judge error) scores 0
and is counted in the metric's `errors`; the metric's `usage` sums its calls, tokens and cost.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promptopt import logs, outbox
from promptopt.batch import events, paths
from promptopt.batch.admission import reads_reference
from promptopt.batch.judge_errors import judge_errors_of, row_judge_errors
from promptopt.batch.judging import MODEL_GRADED
from promptopt.batch.scores import AnswerTokens, answer_tokens_of
from promptopt.batch.state import Known, move, now, transition
from promptopt.batch.view import metric_specs
from promptopt.batch.writer import SCORED_FIELDS
from promptopt.evaluation.errors import MetricError
from promptopt.evaluation.row_metrics import METRICS
from promptopt.evaluation.stats import summarize
from promptopt.http.events import Delivery
from promptopt.store import markers

log = logging.getLogger(__name__)

MARKER = "evaluation"
LEASE = timedelta(minutes=10)


class EvaluationInProgress(markers.StepBusy):
    """Another delivery of the same message holds the evaluation lease: redeliver later."""


class BatchCompleted(BaseModel):
    """The `batch-completed` message: ids only."""

    model_config = ConfigDict(extra="ignore")

    tenant: str = Field(min_length=1, max_length=128)
    job_id: str = Field(pattern=paths.JOB_ID_RE.pattern)


def handle(message: BatchCompleted, _delivery: Delivery) -> str:
    """The batch_score entry point's handler: evaluate the job once (EvaluationInProgress: redeliver)."""
    logs.bind(tenant=message.tenant, job_id=message.job_id)
    return handle_batch_completed(message.model_dump())


def handle_batch_completed(payload: dict[str, Any]) -> str:
    """Evaluate the job a `batch-completed` message names, once; returns what was done."""
    tenant, job_id = payload.get("tenant"), payload.get("job_id")
    if not isinstance(tenant, str) or not isinstance(job_id, str) or not paths.JOB_ID_RE.fullmatch(job_id):
        log.error("batch-completed message without a valid tenant and job_id; dropped")
        return "malformed"
    return evaluate(tenant, job_id)


def evaluate(
    tenant: str,
    job_id: str,
    *,
    inline: bool = False,
    rows: list[dict[str, Any]] | None = None,
    known: Known | None = None,
) -> str:
    """Score the job once (EvaluationInProgress: another delivery is); returns what was done.

    `inline`: called by the chunk that completed the job, which publishes no `batch-completed`
    unless this raises, so no other delivery scores it meanwhile: the marker is written done with
    the scores instead of being claimed first (the status precondition still lets one write win).
    The run that owns the job (if any) is then advanced here too, and `evaluation-completed` is
    retired unpublished unless that failed (see `completion._carry_on`). `rows`: every result as
    its chunk wrote it (status, output, reference, judge), in row order, instead of reading them.
    `known`: the job as the caller has just written it, instead of reading it.
    """
    job = paths.job_ref(tenant, job_id)
    snapshot = known or job.get()
    if not snapshot.exists:
        return "job_not_found"
    data = snapshot.to_dict() or {}
    if not data.get("evaluation"):
        return "no_evaluation"
    if data.get("status") not in ("evaluating", "budget_exhausted"):
        return "not_due"
    marker = paths.marker_ref(job, MARKER)
    if not inline and not _claim(job):
        return "duplicate"
    evaluation, per_row, judge_errors, tokens = _score(job, data, rows)
    spec = (data.get("evaluation") or {}).get("spec")
    recorded, held = _record(
        tenant,
        job,
        evaluation,
        spec,
        owner=data.get("owner"),
        per_row=per_row,
        judge_errors=judge_errors,
        answer_tokens=tokens,
        snapshot=snapshot,
        deliver=not inline,
        marker=marker if inline else None,
    )
    if not inline:
        markers.finish(marker)
    if held is not None:
        scored = (rows, per_row) if rows is not None and recorded else None
        if _advance_owner(tenant, data.get("owner"), job_id, scored):
            outbox.handled([held])
        else:
            outbox.deliver([held])
    return "evaluated" if recorded else "cancelled"


def finish_scored(
    tenant: str,
    job: Any,
    *,
    fields: dict[str, Any],
    rows: list[dict[str, Any]] | None,
    snapshot: Any,
    also: Callable[[Any], None] | None = None,
) -> bool:
    """Score a run's job whose rows are all done and complete it, in one commit; then advance its run.

    For the chunk that completed the job (see the module docstring). `fields`: what completing its
    rows records (totals, rows_done_at), written with the scores. `rows`: every result as the chunk
    wrote it, in row order (None: read). `snapshot`: the job as the chunk read it (its evaluation
    spec; the status is checked again by the write). `also(batch)` adds the caller's writes to that
    commit. False: nothing was written (the job has no evaluation, or is no longer running): the
    caller completes it the usual way.
    """
    data = (snapshot.to_dict() if snapshot is not None else None) or (job.get().to_dict() or {})
    if not data.get("evaluation"):
        return False
    evaluation, per_row, judge_errors, tokens = _score(job, data, rows)
    stored = {**evaluation, "spec": (data.get("evaluation") or {}).get("spec")}
    extra = {**fields, "evaluation": stored}
    if evaluation["status"] != "completed":
        extra["error"] = evaluation["error"]
    message = events.evaluated(tenant, job.id, evaluation["status"], data.get("owner"))
    store_scores = _store_row_scores(job, per_row, judge_errors, tokens)

    def writes(batch: Any) -> None:
        store_scores(batch)
        batch.set(paths.marker_ref(job, MARKER), {"state": "done", "created_at": now(), "finished_at": now()})
        if also is not None:
            also(batch)

    changed, known = move(
        job,
        to="completed" if evaluation["status"] == "completed" else "failed",
        allowed_from=("queued", "running"),
        fields=extra,
        messages=lambda _d, _t: [message],
        writes=writes,
        snapshot=snapshot,
        deliver=False,
    )
    if not changed:
        return False
    status = "completed" if evaluation["status"] == "completed" else "failed"
    # Counted by the jobs-finished log-based metric (terraform/modules/monitoring), as the usual path is.
    log.info(
        "job %s finished its rows: %s (scored with them)",
        job.id,
        status,
        extra={"fields": {"job_id": job.id, "status": status}},
    )
    scored = (rows, per_row) if rows is not None else None
    written = known.data if known is not None else None
    if _advance_owner(tenant, data.get("owner"), job.id, scored, job_data=written):
        outbox.handled([message])
    else:
        outbox.deliver([message])
    return True


def _advance_owner(
    tenant: str,
    owner: dict[str, Any] | None,
    job_id: str,
    scored: tuple[list[dict[str, Any]], PerRow] | None,
    *,
    job_data: dict[str, Any] | None = None,
) -> bool:
    """Advance the experiment run that owns the job, here; False if its evaluation-completed must.

    `scored`: the job's rows and per-row scores as this process has them, and `job_data` the job
    as it has just written it (scored and final), which the run then does not read back.
    """
    if not owner or not owner.get("run_id"):
        return False
    from promptopt.experiments import engine  # only the runs' jobs need it
    from promptopt.experiments.jobs import GivenRows

    given = {job_id: GivenRows(rows=scored[0], per_row=scored[1], job=job_data)} if scored else None
    try:
        outcome = engine.advance(tenant, str(owner["experiment_id"]), str(owner["run_id"]), given=given)
    except Exception:
        log.warning("advancing run %s right away failed; its message will", owner["run_id"], exc_info=True)
        return False
    return outcome != "contended"


def _claim(job: Any) -> bool:
    """Take the evaluation lease; False for a finished duplicate; EvaluationInProgress if held."""
    try:
        return markers.claim(paths.marker_ref(job, MARKER), lease=LEASE) == "claimed"
    except markers.StepBusy as exc:
        raise EvaluationInProgress(f"job {job.id} is being evaluated by another delivery") from exc


def _rows(job: Any) -> list[dict[str, Any]]:
    from google.cloud.firestore_v1.field_path import FieldPath

    fields = [*SCORED_FIELDS, "answer_tokens"]  # the answer tokens are summed with the scores
    query = paths.results(job).order_by(FieldPath.document_id()).select(fields)
    return [{**(s.to_dict() or {}), "row": int(s.id)} for s in query.stream()]


# Per-row scores are kept (paired comparisons and reflection need them) while they fit one document.
MAX_STORED_ROW_SCORES = 20_000


PerRow = dict[str, tuple[list[int], list[float | None]]]
JudgeErrors = dict[str, list[dict[str, Any]]]


def _store_row_scores(
    job: Any, per_row: PerRow, judge_errors: JudgeErrors, answer_tokens: AnswerTokens | None = None
) -> Any:
    """`scores/{metric}`: the row numbers and each row's score (None: the metric did not apply).

    A model-graded metric's document also lists the rows whose grading failed (`judge_errors`,
    see `row_judge_errors`), and each one the answer tokens of the job's rows (`answer_tokens`),
    so a run reads a job's scores and cost per row in one document, not its results.

    Returns the function that adds them to a batch: they are written with the job's status
    change, in the same commit (one round trip, and never scores without their evaluation).
    """

    def writes(batch: Any) -> None:
        for name, (rows, values) in per_row.items():
            if len(rows) <= MAX_STORED_ROW_SCORES:
                doc: dict[str, Any] = {"rows": rows, "values": values}
                if name in judge_errors:
                    doc |= row_judge_errors(judge_errors[name])
                if answer_tokens is not None:
                    doc["answer_tokens"] = answer_tokens
                batch.set(job.collection("scores").document(name), doc)

    return writes


def _score(
    job: Any, data: dict[str, Any], given: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], PerRow, JudgeErrors, AnswerTokens | None]:
    rows = given if given is not None else _rows(job)
    failed = sum(1 for r in rows if r.get("status") != "succeeded")
    summaries: list[dict[str, Any]] = []
    per_row: PerRow = {}
    judge_errors: JudgeErrors = {}
    try:
        for spec in metric_specs(data):
            name, params = spec["name"], spec.get("params") or {}
            values = [_row_score(name, params, row, reads_reference(name, params)) for row in rows]
            per_row[name] = ([int(row["row"]) for row in rows], values)
            scores = [v for v in values if v is not None]
            result = summarize(name, scores)
            summary = {
                "name": name,
                "mean": result.mean,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "n": result.n,
            }
            if name in MODEL_GRADED:
                summary |= _judge_summary(name, params, rows)
                judge_errors[name] = judge_errors_of(
                    name, [r for r in rows if r.get("status") == "succeeded"]
                )
            summaries.append(summary)
    except (MetricError, ValueError, TypeError, KeyError) as exc:
        detail = str(exc) if isinstance(exc, MetricError) else f"{type(exc).__name__} while scoring"
        return (
            {"status": "failed", "error": {"code": "evaluation_failed", "message": detail[:500]}},
            {},
            {},
            None,
        )
    evaluation = {
        "status": "completed",
        "metrics": summaries,
        "n": len(rows),
        "failed_rows": failed,
        "partial": len(rows) < int(data["total_rows"]),
        "error": None,
    }
    return evaluation, per_row, judge_errors, answer_tokens_of(rows)


def _judge_summary(name: str, params: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A model-graded metric's per-row errors and the usage of its calls."""
    verdicts = [(r.get("judge") or {}).get(name) for r in rows if r.get("status") == "succeeded"]
    found = [v for v in verdicts if v is not None]
    model = str(params.get("model") or (found[0]["model"] if found else ""))
    return {
        "errors": sum(1 for v in found if v.get("error")),
        "usage": {
            "model": model,
            "calls": sum(int(v.get("calls") or 0) for v in found),
            "input_tokens": sum(int(v.get("input_tokens") or 0) for v in found),
            "output_tokens": sum(int(v.get("output_tokens") or 0) for v in found),
            "cost_usd": round(math.fsum(float(v.get("cost_usd") or 0.0) for v in found), 8),
            "simulated": model.startswith("sim:"),
        },
    }


def _row_score(name: str, params: dict[str, Any], row: dict[str, Any], needs_reference: bool) -> float | None:
    """One row's score; None when the row does not count for this metric."""
    reference = row.get("reference")
    if needs_reference and reference is None:
        return None
    if row.get("status") != "succeeded":
        return 0.0  # a failed row (refused, or retries ran out) scores 0
    if name in MODEL_GRADED:  # graded when the row was answered; no verdict (never graded) scores 0
        verdict = (row.get("judge") or {}).get(name) or {}
        return float(verdict.get("score") or 0.0)
    try:
        return float(METRICS[name].score(str(row.get("output") or ""), str(reference or ""), params))
    except MetricError:  # this row's reference does not suit the metric (e.g. no number)
        return None


def _record(
    tenant: str,
    job: Any,
    evaluation: dict[str, Any],
    spec: str | None,
    *,
    owner: dict[str, Any] | None,
    per_row: PerRow,
    judge_errors: JudgeErrors,
    snapshot: Any,
    deliver: bool = True,
    marker: Any = None,
    answer_tokens: AnswerTokens | None = None,
) -> tuple[bool, outbox.Message | None]:
    """Write the evaluation and its per-row scores onto the job and announce it, in one commit.

    An evaluating job becomes completed (or failed); a cancelled one stays as it is, unscored.
    Returns False if the job was cancelled meanwhile. `snapshot` is the job as the step read it.
    With `deliver=False` the message of a job that became completed or failed is recorded but
    not published: it is returned, for the caller to publish. `marker`: written done with them.
    """
    store_scores = _store_row_scores(job, per_row, judge_errors, answer_tokens)

    def scores(batch: Any) -> None:
        store_scores(batch)
        if marker is not None:
            batch.set(marker, {"state": "done", "created_at": now(), "finished_at": now()})

    stored = {**evaluation, "spec": spec}
    target = "completed" if evaluation["status"] == "completed" else "failed"
    fields: dict[str, Any] = {"evaluation": stored}
    if target == "failed":
        fields["error"] = evaluation["error"]
    message = events.evaluated(tenant, job.id, evaluation["status"], owner)
    changed, current = transition(
        job,
        to=target,
        allowed_from=("evaluating",),
        fields=fields,
        messages=lambda _d, _t: [message],
        writes=scores,
        snapshot=snapshot,
        deliver=deliver,
    )
    if changed:
        return True, None if deliver else message
    if current is None or current.get("status") != "budget_exhausted":
        return False, None  # cancelled (or gone) while scoring
    # budget_exhausted: the status stays, the metrics are added (with their message, atomically).
    batch = job._client.batch()
    batch.update(job, {"evaluation": stored, "updated_at": now()})
    outbox.record(batch, message)
    scores(batch)
    batch.commit()
    outbox.deliver([message])
    return True, None
