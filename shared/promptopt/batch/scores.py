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
from promptopt.batch.view import metric_specs, prompt_pin, source_info
from promptopt.errors import Conflict
from promptopt.evaluation.names import MODEL_METRIC_NAMES as ROW_MODEL_METRICS

AnswerTokens = dict[str, float | int]  # {"sum": answer tokens of the rows counted, "rows": how many}


def answer_tokens_of(rows: list[dict[str, Any]]) -> AnswerTokens:
    """The answer tokens of the rows that succeeded and recorded them: their sum, and how many rows.

    The evaluation step stores it in each `scores/{metric}` document; a run that reads a job's
    results instead sums them the same way (`experiments.jobs.read_result`), in row order.
    """
    counted = [
        float(r["answer_tokens"])
        for r in rows
        if r.get("status") == "succeeded" and r.get("answer_tokens") is not None
    ]
    return {"sum": sum(counted), "rows": len(counted)}


# Answered as a plain dict (no pydantic on the endpoint's cold start); tests/unit/test_views.py
# checks it against JobScores.


def job_scores(*, principal: Principal, job_id: str) -> dict[str, Any]:
    """Each metric's per-row scores; 409 for a job that is not an evaluation or not scored yet.

    A JobScores, as a plain dict.
    """
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
    metrics = [metric_scores(ref, spec, stored[spec["name"]]) for spec in specs]
    return {
        "job_id": job_id,
        "model": str(data["model"]),
        "prompt": prompt_pin(data.get("prompt")),
        "source": source_info(data["source"]),
        "partial": bool(evaluation.get("partial")),
        "metrics": metrics,
    }


def metric_scores(ref: Any, spec: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """A MetricRowScores from the metric's scores document."""
    name = str(spec["name"])
    return {
        "name": name,
        "params": dict(spec.get("params") or {}),
        "rows": [int(r) for r in stored.get("rows") or []],
        "values": [None if v is None else float(v) for v in stored.get("values") or []],
        "judge_errors": None,
        "judge_error_count": None,
    } | _judge_errors(ref, name, stored)


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
        "judge_errors": [
            {"row": int(e["row"]), "code": str(e["code"]), "message": str(e["message"])}
            for e in stored["judge_errors"]
        ],
        "judge_error_count": int(stored.get("judge_error_count", len(stored["judge_errors"]))),
    }
