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


def job_totals(job: DocumentReference) -> dict[str, Any]:
    """Sums over the chunk documents (two aggregation queries, at once: progress, then usage)."""
    from concurrent.futures import ThreadPoolExecutor

    def sums(names: tuple[str, ...]) -> dict[str, Any]:
        return aggregate(paths.chunks(job), sums=[(n, n) for n in names])

    values: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=len(_TOTAL_GROUPS)) as pool:
        for found in pool.map(sums, _TOTAL_GROUPS):
            values.update(found)
    totals: dict[str, Any] = {name: int(values.get(name) or 0) for name in TOTAL_FIELDS if name != "cost_usd"}
    totals["cost_usd"] = round(float(values.get("cost_usd") or 0.0), 8)
    return totals
