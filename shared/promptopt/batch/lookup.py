"""Reading and cancelling one job as its tenant sees it (404 for other tenants' and unknown ids).

Apart from job creation (batch.jobs), so that reading or cancelling a job loads neither
creation's imports nor pydantic on its cold start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from promptopt.batch import paths
from promptopt.batch.view import job_dict
from promptopt.errors import Conflict, NotFound

log = logging.getLogger(__name__)

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


def cancel_job(*, principal: Principal, job_id: str) -> dict[str, Any]:
    """Stop a job in any non-final state (evaluating too); cancelling twice is fine.

    Chunks not yet run make no calls; an evaluation not yet recorded is not run. A BatchJob, as a
    plain dict.
    """
    from promptopt.batch.state import CANCELLABLE, cancel_fields, transition

    ref, data = load_job(principal, job_id)
    changed, current = transition(ref, to="cancelled", allowed_from=CANCELLABLE, fields=cancel_fields)
    current = current or data
    if not changed and current.get("status") != "cancelled":
        raise Conflict(
            f"batch job {job_id} is {current.get('status')}; a finished job cannot be cancelled",
            code="job_not_cancellable",
            job_status=current.get("status"),
        )
    log.info("job %s cancelled", job_id, extra={"fields": {"job_id": job_id}})
    return job_dict(ref, current)
