"""A job document as the API shows it, with live progress while rows are still being written.

A finished job carries the totals its completion step froze. Until then progress and usage are
summed over the job's chunk documents, never over its results: a poll is one document get and
two aggregation queries over one entry per chunk, whatever the number of rows, and the listing
and the single GET show the same numbers. A running chunk writes its row counts to its document
as its results are written (see runner); its usage when it finishes (scripts/bench/batch-progress
measures what a poll costs).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from promptopt.batch.completion import job_totals
from promptopt.batch.models import (
    BatchJob,
    Budget,
    EvaluationInfo,
    JobError,
    Progress,
    PromptPin,
    SourceInfo,
    Usage,
)
from promptopt.evaluation.models import MetricSummary

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference


def live_totals(job: DocumentReference) -> dict[str, Any]:
    """Counts and usage of the chunks recorded so far (sums over the chunk documents)."""
    return job_totals(job)


def _evaluation(data: dict[str, Any] | None, job_status: str) -> EvaluationInfo | None:
    if not data:
        return None
    status = data.get("status", "pending")
    if status == "pending" and job_status in ("cancelled", "failed"):
        status = "not_run"  # nothing will score a stopped job's answers
    return EvaluationInfo(
        status=status,
        metrics=[MetricSummary.model_validate(m) for m in data.get("metrics") or []],
        n=data.get("n"),
        failed_rows=data.get("failed_rows"),
        partial=bool(data.get("partial")),
        error=JobError.model_validate(data["error"]) if data.get("error") else None,
    )


def metric_specs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an evaluation job asked for (name and params)."""
    spec = (data.get("evaluation") or {}).get("spec")
    return list(json.loads(spec)) if spec else []


_NOTHING_YET = dict.fromkeys(
    ("succeeded", "failed", "cache_hits", "calls", "input_tokens", "output_tokens"), 0
)


def job_view(job: DocumentReference, data: dict[str, Any], *, fresh: bool = False) -> BatchJob:
    """The API representation of a job document (`fresh`: just created, nothing can have run)."""
    totals = data.get("totals") or ({**_NOTHING_YET, "cost_usd": 0.0} if fresh else live_totals(job))
    total = int(data["total_rows"])
    succeeded, failed = int(totals["succeeded"]), int(totals["failed"])
    return BatchJob(
        job_id=str(data["job_id"]),
        kind=data.get("kind", "batch"),
        status=data["status"],
        model=str(data["model"]),
        prompt=PromptPin.model_validate(data["prompt"]) if data.get("prompt") else None,
        source=SourceInfo.model_validate(data["source"]),
        chunk_size=int(data["chunk_size"]),
        chunks=int(data["chunks"]),
        concurrency=int(data["concurrency"]),
        cache=bool(data.get("cache", True)),
        budget=Budget.model_validate(data.get("budget") or {}),
        progress=Progress(
            total=total,
            succeeded=succeeded,
            failed=failed,
            pending=max(0, total - succeeded - failed),
            cache_hits=int(totals["cache_hits"]),
        ),
        usage=Usage(
            calls=int(totals["calls"]),
            judge_calls=int(totals.get("judge_calls") or 0),
            input_tokens=int(totals["input_tokens"]),
            output_tokens=int(totals["output_tokens"]),
            cost_usd=float(totals["cost_usd"]),
        ),
        stop_reason=data.get("stop_reason"),
        error=JobError.model_validate(data["error"]) if data.get("error") else None,
        evaluation=_evaluation(data.get("evaluation"), str(data["status"])),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        finished_at=data.get("finished_at"),
        created_by=str(data.get("created_by") or ""),
    )
