"""Hard budgets (model calls, tokens, cost), checked before a chunk makes any call.

What a job has spent is one aggregation query over its chunk documents (sums of calls, tokens
and cost), never a counter document that every row would update. A chunk about to run reserves
the calls it will make on its own chunk document, so concurrent chunks see each other's
reservations: with `max_calls` a chunk makes at most what is left, and the job stops exactly
there (two chunks that check in the same instant can overshoot by at most one chunk). Tokens
and cost are known only after a call, so they stop the job at chunk granularity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptopt.batch import paths
from promptopt.batch.aggregate import aggregate

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

    from promptopt.batch.writer import ChunkTotals


@dataclass(frozen=True)
class Spent:
    """Calls, reserved calls, tokens and cost of a set of chunks."""

    calls: int = 0
    reserved_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def of_chunk(cls, data: dict[str, Any]) -> Spent:
        """What one chunk document records."""
        return cls(
            calls=int(data.get("calls") or 0),
            reserved_calls=int(data.get("reserved_calls") or 0),
            tokens=int(data.get("tokens") or 0),
            cost_usd=float(data.get("cost_usd") or 0.0),
        )


def job_spent(job: DocumentReference) -> Spent:
    """The sums over every chunk document of the job (one aggregation query)."""
    names = ("calls", "reserved_calls", "tokens", "cost_usd")
    values = aggregate(paths.chunks(job), sums=[(n, n) for n in names])
    return Spent(
        calls=int(values.get("calls") or 0),
        reserved_calls=int(values.get("reserved_calls") or 0),
        tokens=int(values.get("tokens") or 0),
        cost_usd=float(values.get("cost_usd") or 0.0),
    )


def allowance(
    budget: dict[str, Any], job: Spent, own_record: Spent, own_done: ChunkTotals, wanted: int
) -> tuple[int, str | None]:
    """How many of `wanted` calls this chunk may make, and which limit stops it (None: none does).

    `job` sums every chunk document including this chunk's own (`own_record`), which may be stale
    after a crash; what this chunk really has spent so far is `own_done`, read from its results.
    """
    others_calls = job.calls - own_record.calls + job.reserved_calls - own_record.reserved_calls
    calls = others_calls + own_done.calls
    tokens = job.tokens - own_record.tokens + own_done.input_tokens + own_done.output_tokens
    cost = job.cost_usd - own_record.cost_usd + own_done.cost_usd
    max_tokens = budget.get("max_tokens")
    if max_tokens is not None and tokens >= max_tokens:
        return 0, "max_tokens"
    max_cost = budget.get("max_cost_usd")
    if max_cost is not None and cost >= max_cost:
        return 0, "max_cost_usd"
    max_calls = budget.get("max_calls")
    if max_calls is not None:
        left = max(0, int(max_calls) - calls)
        if left < wanted:
            return left, "max_calls"
    return wanted, None
