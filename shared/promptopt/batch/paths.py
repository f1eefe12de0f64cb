"""Where a batch job's documents live, and their deterministic ids.

    tenants/{t}/batch_jobs/{job_id}                 the job: spec, status, final totals
        inputs/{chunk:05d}                          inline rows of one chunk (dataset jobs have none)
        chunks/{chunk:05d}                          one chunk's state and totals (written by its task)
        results/{row:07d}                           one row's terminal result (create-if-absent)
        markers/{name}                              create-if-absent markers: completed, evaluation
    tenants/{t}/cache/{sha256}                      cached answers (Firestore TTL on expires_at)

Results use the collection group `results`, whose `created_at` Terraform exempts from indexing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference, DocumentReference

JOBS = "batch_jobs"
JOB_ID_RE = re.compile(r"^bj_[0-9a-f]{20}$")


def job_ref(tenant: str, job_id: str) -> DocumentReference:
    """The job document."""
    return tenant_collection(tenant, JOBS).document(job_id)


def jobs(tenant: str) -> CollectionReference:
    """The tenant's jobs."""
    return tenant_collection(tenant, JOBS)


def chunk_id(chunk: int) -> str:
    """The id of chunk `chunk` (zero-padded so ids sort in chunk order)."""
    return f"{chunk:05d}"


def row_id(row: int) -> str:
    """The id of row `row`'s result (zero-padded so ids sort in row order)."""
    return f"{row:07d}"


def inputs_ref(job: DocumentReference, chunk: int) -> DocumentReference:
    """Inline rows of one chunk."""
    return job.collection("inputs").document(chunk_id(chunk))


def chunks(job: DocumentReference) -> CollectionReference:
    """The job's chunk records."""
    return job.collection("chunks")


def results(job: DocumentReference) -> CollectionReference:
    """The job's per-row results."""
    return job.collection("results")


def marker_ref(job: DocumentReference, name: str) -> DocumentReference:
    """A create-if-absent marker that lets exactly one writer take a step."""
    return job.collection("markers").document(name)


def cache_ref(tenant: str, key: str) -> DocumentReference:
    """A cached answer."""
    return tenant_collection(tenant, "cache").document(key)
