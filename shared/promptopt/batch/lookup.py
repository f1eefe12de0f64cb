"""Reading one job as its tenant sees it: 404 for other tenants' ids, unknown or malformed ids.

Apart from job creation (batch.jobs), so that reading a job loads neither creation's imports nor
pydantic on its cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.batch import paths
from promptopt.batch.view import job_dict
from promptopt.errors import NotFound

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

    from promptopt.auth import Principal


def load_job(principal: Principal, job_id: str) -> tuple[DocumentReference, dict[str, Any]]:
    """The job's reference and data; 404 for ids of other tenants, unknown or malformed ids."""
    if not paths.JOB_ID_RE.fullmatch(job_id):
        raise NotFound(f"batch job {job_id[:40]} not found", code="job_not_found")
    ref = paths.job_ref(principal.tenant, job_id)
    snapshot = ref.get()
    if not snapshot.exists:
        raise NotFound(f"batch job {job_id} not found", code="job_not_found")
    return ref, snapshot.to_dict() or {}


def get_job(*, principal: Principal, job_id: str) -> dict[str, Any]:
    """The job with its progress, usage and (for evaluations) metrics: a BatchJob, as a plain dict."""
    ref, data = load_job(principal, job_id)
    return job_dict(ref, data)
