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

from promptopt.batch.totals import job_totals

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

# A job is answered as a plain dict (reads, the listing and creates), so no function builds BatchJob
# on its cold start; tests/unit/test_views.py checks each dict against its model (BatchJob and the models
# inside it), field by field and as JSON.


def live_totals(job: DocumentReference) -> dict[str, Any]:
    """Counts and usage of the chunks recorded so far (sums over the chunk documents)."""
    return job_totals(job)


def _error(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JobError (or RowError)."""
    return {"code": str(data["code"]), "message": str(data["message"])} if data else None


def _metric_usage(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    return {
        "model": str(data["model"]),
        "calls": int(data["calls"]),
        "input_tokens": int(data["input_tokens"]),
        "output_tokens": int(data["output_tokens"]),
        "cost_usd": float(data["cost_usd"]),
        "simulated": bool(data["simulated"]),
    }


def metric_summary(data: dict[str, Any]) -> dict[str, Any]:
    """A MetricSummary from its stored form."""
    return {
        "name": str(data["name"]),
        "mean": float(data["mean"]),
        "ci_low": float(data["ci_low"]),
        "ci_high": float(data["ci_high"]),
        "n": int(data["n"]),
        "errors": int(data.get("errors") or 0),
        "usage": _metric_usage(data.get("usage")),
    }


def _evaluation(data: dict[str, Any] | None, job_status: str) -> dict[str, Any] | None:
    """An EvaluationInfo."""
    if not data:
        return None
    status = data.get("status", "pending")
    if status == "pending" and job_status in ("cancelled", "failed"):
        status = "not_run"  # nothing will score a stopped job's answers
    return {
        "status": status,
        "metrics": [metric_summary(m) for m in data.get("metrics") or []],
        "n": data.get("n"),
        "failed_rows": data.get("failed_rows"),
        "partial": bool(data.get("partial")),
        "error": _error(data.get("error")),
    }


def prompt_pin(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A PromptPin (None for inline prompts)."""
    return {"prompt_id": str(data["prompt_id"]), "version": int(data["version"])} if data else None


def source_info(data: dict[str, Any]) -> dict[str, Any]:
    """A SourceInfo."""
    return {
        "type": data["type"],
        "dataset_id": data.get("dataset_id"),
        "dataset_version": data.get("dataset_version"),
        "split": data.get("split"),
    }


def _budget(data: dict[str, Any] | None) -> dict[str, Any]:
    data = data or {}
    cost = data.get("max_cost_usd")
    return {
        "max_calls": data.get("max_calls"),
        "max_tokens": data.get("max_tokens"),
        "max_cost_usd": None if cost is None else float(cost),
    }


def metric_specs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an evaluation job asked for (name and params)."""
    spec = (data.get("evaluation") or {}).get("spec")
    return list(json.loads(spec)) if spec else []


_NOTHING_YET = dict.fromkeys(
    ("succeeded", "failed", "cache_hits", "calls", "input_tokens", "output_tokens"), 0
)


def job_dict(job: DocumentReference, data: dict[str, Any], *, fresh: bool = False) -> dict[str, Any]:
    """A job document as the API shows it: a BatchJob's fields, as a plain dict.

    `fresh`: just created, nothing can have run (no totals to read).
    """
    totals = data.get("totals") or ({**_NOTHING_YET, "cost_usd": 0.0} if fresh else live_totals(job))
    total = int(data["total_rows"])
    succeeded, failed = int(totals["succeeded"]), int(totals["failed"])
    return {
        "job_id": str(data["job_id"]),
        "kind": data.get("kind", "batch"),
        "status": data["status"],
        "model": str(data["model"]),
        "prompt": prompt_pin(data.get("prompt")),
        "source": source_info(data["source"]),
        "chunk_size": int(data["chunk_size"]),
        "chunks": int(data["chunks"]),
        "concurrency": int(data["concurrency"]),
        "cache": bool(data.get("cache", True)),
        "budget": _budget(data.get("budget")),
        "progress": {
            "total": total,
            "succeeded": succeeded,
            "failed": failed,
            "pending": max(0, total - succeeded - failed),
            "cache_hits": int(totals["cache_hits"]),
        },
        "usage": {
            "calls": int(totals["calls"]),
            "judge_calls": int(totals.get("judge_calls") or 0),
            "input_tokens": int(totals["input_tokens"]),
            "output_tokens": int(totals["output_tokens"]),
            "cost_usd": float(totals["cost_usd"]),
        },
        "stop_reason": data.get("stop_reason"),
        "error": _error(data.get("error")),
        "evaluation": _evaluation(data.get("evaluation"), str(data["status"])),
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "finished_at": data.get("finished_at"),
        "created_by": str(data.get("created_by") or ""),
    }
