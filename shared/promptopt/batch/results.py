"""A job's results page by page, in row order (the document id is the zero-padded row number)."""

from __future__ import annotations

from typing import Any

from promptopt.auth import Principal
from promptopt.batch import paths
from promptopt.batch.jobs import load_job
from promptopt.batch.models import BatchResultRow, ResultsPage, ResultsQuery, RowError, RowVerdict
from promptopt.store.pagination import decode_token, encode_token, page_size

_FIELDS = [
    "row", "status", "output", "error", "inputs", "reference", "dataset_row", "split",
    "cached", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "finish_reason", "judge",
]  # fmt: skip


def _cursor(values: list[Any]) -> int:
    (row,) = values
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise ValueError("malformed cursor")
    return row


def _row(data: dict[str, Any]) -> BatchResultRow:
    return BatchResultRow(
        row=int(data["row"]),
        status=data["status"],
        output=data.get("output"),
        error=RowError.model_validate(data["error"]) if data.get("error") else None,
        inputs=dict(data.get("inputs") or {}),
        reference=data.get("reference"),
        dataset_row=data.get("dataset_row"),
        split=data.get("split"),
        cached=bool(data.get("cached")),
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        cost_usd=float(data.get("cost_usd") or 0.0),
        latency_ms=int(data.get("latency_ms") or 0),
        finish_reason=data.get("finish_reason"),
        judge={name: RowVerdict.model_validate(v) for name, v in data["judge"].items()}
        if data.get("judge")
        else None,
    )


def list_results(*, principal: Principal, job_id: str, query: ResultsQuery) -> ResultsPage:
    """One page of results (optionally only succeeded or failed rows)."""
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
    items = [_row(s.to_dict() or {}) for s in snapshots[:size]]
    token = encode_token([items[-1].row], scope, tenant=principal.tenant) if len(snapshots) > size else None
    return ResultsPage(job_id=job_id, items=items, next_page_token=token)
