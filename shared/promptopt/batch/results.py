"""A job's results page by page, in row order (the document id is the zero-padded row number)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.auth import Principal
from promptopt.batch import paths
from promptopt.batch.lookup import load_job
from promptopt.store.pagination import decode_token, encode_token, page_size

if TYPE_CHECKING:
    from promptopt.batch.read_models import ResultsQuery

# Rows are answered as plain dicts (no pydantic on the cold start); tests/unit/test_views.py checks
# them against BatchResultRow and ResultsPage.


class ResultsDefaults(NamedTuple):
    """ResultsQuery with nothing given (GET …/results without a query string)."""

    page_size: int | None = None
    page_token: str | None = None
    status: str | None = None


_FIELDS = [
    "row", "status", "output", "error", "inputs", "reference", "dataset_row", "split",
    "cached", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "finish_reason", "judge",
]  # fmt: skip


def _cursor(values: list[Any]) -> int:
    (row,) = values
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise ValueError("malformed cursor")
    return row


def _error(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A RowError."""
    return {"code": str(data["code"]), "message": str(data["message"])} if data else None


def _verdict(data: dict[str, Any]) -> dict[str, Any]:
    """A RowVerdict."""
    return {
        "score": float(data["score"]),
        "reason": data.get("reason"),
        "error": _error(data.get("error")),
        "model": str(data["model"]),
        "cached": bool(data["cached"]),
    }


def row_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A BatchResultRow from the stored result."""
    return {
        "row": int(data["row"]),
        "status": data["status"],
        "output": data.get("output"),
        "error": _error(data.get("error")),
        "inputs": {str(k): str(v) for k, v in (data.get("inputs") or {}).items()},
        "reference": data.get("reference"),
        "dataset_row": data.get("dataset_row"),
        "split": data.get("split"),
        "cached": bool(data.get("cached")),
        "input_tokens": int(data.get("input_tokens") or 0),
        "output_tokens": int(data.get("output_tokens") or 0),
        "cost_usd": float(data.get("cost_usd") or 0.0),
        "latency_ms": int(data.get("latency_ms") or 0),
        "finish_reason": data.get("finish_reason"),
        "judge": {str(name): _verdict(v) for name, v in data["judge"].items()} if data.get("judge") else None,
    }


def list_results(
    *, principal: Principal, job_id: str, query: ResultsQuery | ResultsDefaults
) -> dict[str, Any]:
    """One page of results (optionally only succeeded or failed rows): a ResultsPage, as a plain dict."""
    from google.cloud.firestore_v1.base_query import FieldFilter
    from google.cloud.firestore_v1.field_path import FieldPath

    ref, _ = load_job(principal, job_id)
    scope = {"job": job_id, "status": query.status}
    after = decode_token(query.page_token, scope, _cursor, tenant=principal.tenant)
    size = page_size(query.page_size)
    results = paths.results(ref)
    q: Any = results
    if query.status is not None:
        q = q.where(filter=FieldFilter("status", "==", query.status))
    q = q.order_by(FieldPath.document_id())
    if after is not None:
        q = q.start_after({FieldPath.document_id(): results.document(paths.row_id(after))})
    snapshots = list(q.select(_FIELDS).limit(size + 1).stream())
    items = [row_dict(s.to_dict() or {}) for s in snapshots[:size]]
    more = len(snapshots) > size
    token = encode_token([items[-1]["row"]], scope, tenant=principal.tenant) if more else None
    return {"items": items, "next_page_token": token, "job_id": job_id}
