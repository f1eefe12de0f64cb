"""A tenant's jobs, newest first, filtered by status, kind and prompt.

A listing never aggregates over results: a finished job carries its frozen totals and a running
one is summed from its chunk documents (two aggregations over at most a few thousand chunk records,
at most five running jobs per tenant), so a page costs about one read per job shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.auth import Principal
from promptopt.batch import paths
from promptopt.batch.totals import many_job_totals
from promptopt.batch.view import job_dict
from promptopt.store import sorting
from promptopt.store.pagination import decode_token, encode_token, page_size

if TYPE_CHECKING:
    from promptopt.batch.read_models import BatchListQuery


class ListDefaults(NamedTuple):
    """BatchListQuery with nothing given.

    GET /inference/batch without a query string reads these and loads no pydantic (cold start);
    tests/unit/test_views.py checks they match the model.
    """

    page_size: int | None = None
    page_token: str | None = None
    status: str | None = None
    kind: str | None = None
    prompt_id: str | None = None
    sort: str = "-created"


def list_jobs(*, principal: Principal, query: BatchListQuery | ListDefaults) -> dict[str, Any]:
    """One page of the tenant's jobs: a BatchJobPage, as a plain dict."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    by = sorting.order(query.sort, id_field="job_id")
    scope = {"status": query.status, "kind": query.kind, "prompt_id": query.prompt_id, "sort": query.sort}
    cursor = decode_token(
        query.page_token, scope, lambda v: by.parse(v, paths.JOB_ID_RE.fullmatch), tenant=principal.tenant
    )
    size = page_size(query.page_size)
    q: Any = paths.jobs(principal.tenant)
    for field, value in (
        ("status", query.status),
        ("kind", query.kind),
        ("prompt.prompt_id", query.prompt_id),
    ):
        if value is not None:
            q = q.where(filter=FieldFilter(field, "==", value))
    q = by.apply(q)
    if cursor is not None:
        q = by.start_after(q, cursor)
    snapshots = list(q.limit(size + 1).stream())
    page = [(snapshot.reference, snapshot.to_dict() or {}) for snapshot in snapshots[:size]]
    live = [ref for ref, data in page if not data.get("totals")]  # unfinished: summed from their chunks
    summed = dict(zip(live, many_job_totals(live), strict=True))
    items = [job_dict(ref, {**data, "totals": summed[ref]} if ref in summed else data) for ref, data in page]
    token = None
    if len(snapshots) > size:
        token = encode_token(by.cursor(snapshots[size - 1].to_dict() or {}), scope, tenant=principal.tenant)
    return {"items": items, "next_page_token": token}
