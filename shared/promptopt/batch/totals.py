"""A job's counts and usage, summed over its chunk documents.

Its own module, apart from the completion step, so that reading a job (GET, listing, usage)
loads neither the completion machinery nor the event models it publishes (cold start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.batch import paths
from promptopt.batch.aggregate import aggregate

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

TOTAL_FIELDS = (
    "succeeded",
    "failed",
    "cache_hits",
    "calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "judge_calls",
)

# An aggregation query with several sums only counts documents holding every summed field, so
# the fields a running chunk shows early (its progress) are summed apart from those it writes
# when it finishes (its usage): a chunk that has shown only progress still counts in the first.
_TOTAL_GROUPS = (TOTAL_FIELDS[:3], TOTAL_FIELDS[3:])


# At most this many aggregation queries in flight for one request (a page of jobs).
_MAX_PARALLEL_QUERIES = 16


def job_totals(job: DocumentReference) -> dict[str, Any]:
    """Sums over the chunk documents (two aggregation queries, at once: progress, then usage)."""
    return many_job_totals([job])[0]


def many_job_totals(jobs: list[DocumentReference]) -> list[dict[str, Any]]:
    """`job_totals` of each job, in order, with every job's queries sent at once.

    A page of unfinished jobs then waits about one round trip, not one per job.
    """
    from concurrent.futures import ThreadPoolExecutor

    def sums(job: DocumentReference, names: tuple[str, ...]) -> dict[str, Any]:
        return aggregate(paths.chunks(job), sums=[(n, n) for n in names])

    if not jobs:
        return []
    workers = min(_MAX_PARALLEL_QUERIES, len(jobs) * len(_TOTAL_GROUPS))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [[pool.submit(sums, job, group) for group in _TOTAL_GROUPS] for job in jobs]
        found = [[future.result() for future in per_job] for per_job in futures]
    return [_totals({k: v for part in parts for k, v in part.items()}) for parts in found]


def _totals(values: dict[str, Any]) -> dict[str, Any]:
    totals: dict[str, Any] = {name: int(values.get(name) or 0) for name in TOTAL_FIELDS if name != "cost_usd"}
    totals["cost_usd"] = round(float(values.get("cost_usd") or 0.0), 8)
    return totals
