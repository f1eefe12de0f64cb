"""An evaluation job's per-row scores, as the evaluation step stored them (`scores/{metric}`).

Aggregates hide which rows moved; a paired comparison of two jobs over the same rows (a CI gate, a
regression check) needs each row's score. Job rows of two jobs over the same dataset version and
split are the same dataset rows in the same order, so `rows` pair them.
"""

from __future__ import annotations

from typing import Any

from promptopt.auth import Principal
from promptopt.batch.judge_errors import judge_errors_of, row_judge_errors
from promptopt.batch.lookup import load_job
from promptopt.batch.models import JobScores, MetricRowScores, PromptPin, RowJudgeError, SourceInfo
from promptopt.batch.view import metric_specs
from promptopt.errors import Conflict
from promptopt.evaluation.models import ROW_MODEL_METRICS


def job_scores(*, principal: Principal, job_id: str) -> JobScores:
    """Each metric's per-row scores; 409 for a job that is not an evaluation or not scored yet."""
    ref, data = load_job(principal, job_id)
    evaluation = data.get("evaluation") or {}
    if not evaluation:
        raise Conflict(f"{job_id} is a batch job without metrics", code="not_an_evaluation")
    if evaluation.get("status") != "completed":
        status = evaluation.get("status", "pending")
        raise Conflict(
            f"the evaluation of {job_id} is {status}; per-row scores exist once it has completed "
            f"(the job is {data.get('status')})",
            code="evaluation_not_completed",
        )
    specs = metric_specs(data)
    stored = {s.id: s.to_dict() or {} for s in ref.collection("scores").stream()}
    missing = [str(spec["name"]) for spec in specs if spec["name"] not in stored]
    if missing:
        raise Conflict(
            f"{job_id} has no per-row scores stored for {', '.join(missing)} (too many rows to keep)",
            code="scores_not_stored",
        )
    metrics = [
        MetricRowScores(
            name=str(spec["name"]),
            params=dict(spec.get("params") or {}),
            rows=[int(r) for r in stored[spec["name"]].get("rows") or []],
            values=[None if v is None else float(v) for v in stored[spec["name"]].get("values") or []],
            **_judge_errors(ref, str(spec["name"]), stored[spec["name"]]),
        )
        for spec in specs
    ]
    return JobScores(
        job_id=job_id,
        model=str(data["model"]),
        prompt=PromptPin.model_validate(data["prompt"]) if data.get("prompt") else None,
        source=SourceInfo.model_validate(data["source"]),
        partial=bool(evaluation.get("partial")),
        metrics=metrics,
    )


def _judge_errors(ref: Any, name: str, stored: dict[str, Any]) -> dict[str, Any]:
    """A model-graded metric's failed gradings, as stored with its scores.

    Jobs scored before the scores document listed them are read from their results' verdicts once
    per call (only answered rows are graded, as the evaluation step counts them).
    """
    if name not in ROW_MODEL_METRICS:
        return {}
    if "judge_errors" not in stored:
        from google.cloud.firestore_v1.field_path import FieldPath

        from promptopt.batch import paths

        query = paths.results(ref).order_by(FieldPath.document_id()).select(["status", f"judge.{name}.error"])
        rows = [{**(s.to_dict() or {}), "row": int(s.id)} for s in query.stream()]
        stored = row_judge_errors(judge_errors_of(name, [r for r in rows if r.get("status") == "succeeded"]))
    return {
        "judge_errors": [RowJudgeError.model_validate(e) for e in stored["judge_errors"]],
        "judge_error_count": int(stored.get("judge_error_count", len(stored["judge_errors"]))),
    }
