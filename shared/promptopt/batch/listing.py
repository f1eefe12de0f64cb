"""A tenant's jobs, newest first, filtered by status, kind and prompt.

A listing never aggregates over results: a finished job carries its frozen totals and a running
one is summed from its chunk documents (two aggregations over at most a few thousand chunk records,
at most five running jobs per tenant), so a page costs about one read per job shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from promptopt.auth import Principal
from promptopt.batch import paths
from promptopt.batch.completion import job_totals
from promptopt.batch.models import BatchJobPage, BatchListQuery
from promptopt.batch.view import job_view
from promptopt.store.pagination import decode_token, encode_token, page_size


def _cursor(values: list[Any]) -> tuple[datetime, str]:
    created, job_id = values
    if not isinstance(created, str) or not isinstance(job_id, str) or not paths.JOB_ID_RE.fullmatch(job_id):
        raise ValueError("malformed cursor")
    return datetime.fromisoformat(created), job_id


def list_jobs(*, principal: Principal, query: BatchListQuery) -> BatchJobPage:
    """One page of the tenant's jobs."""
    from google.cloud.firestore import Query
    from google.cloud.firestore_v1.base_query import FieldFilter

    scope = {"status": query.status, "kind": query.kind, "prompt_id": query.prompt_id}
    cursor = decode_token(query.page_token, scope, _cursor, tenant=principal.tenant)
    size = page_size(query.page_size)
    q: Any = paths.jobs(principal.tenant)
    for field, value in (
        ("status", query.status),
        ("kind", query.kind),
        ("prompt.prompt_id", query.prompt_id),
    ):
        if value is not None:
            q = q.where(filter=FieldFilter(field, "==", value))
    q = q.order_by("created_at", direction=Query.DESCENDING).order_by("job_id", direction=Query.DESCENDING)
    if cursor is not None:
        q = q.start_after({"created_at": cursor[0], "job_id": cursor[1]})
    snapshots = list(q.limit(size + 1).stream())
    items = []
    for snapshot in snapshots[:size]:
        data = snapshot.to_dict() or {}
        if not data.get("totals"):
            data = {**data, "totals": job_totals(snapshot.reference)}
        items.append(job_view(snapshot.reference, data))
    token = None
    if len(snapshots) > size:
        last = items[-1]
        token = encode_token([last.created_at.isoformat(), last.job_id], scope, tenant=principal.tenant)
    return BatchJobPage(items=items, next_page_token=token)
