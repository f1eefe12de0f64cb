"""Hard budgets (model calls, tokens, cost), checked before a chunk makes any call.

What a job has spent is read from its chunk documents (calls, tokens and cost), never a counter
document that every row would update. A chunk about to run first reserves the calls it wants on
its own chunk document, stamped `reserved_at` (the commit time; later writes leave it alone), then
reads the others: what they spent, and what those that reserved before it (by `reserved_at`, then
chunk number) hold in reserve. Of chunks checking at once each counts those ahead of it, and a
later reservation's read always sees the earlier ones, so with `max_calls` they never pass it
together (they may stop a little short when they race at the limit); a chunk then gives back what
it may not use. Tokens and cost are known only after a call, so they stop the job at chunk
granularity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptopt.batch import paths

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


def reserve(chunk_ref: DocumentReference, chunk: int, calls: int) -> None:
    """Reserve `calls` on the chunk's document, stamped with the commit time (its place in line)."""
    from google.cloud.firestore import SERVER_TIMESTAMP

    chunk_ref.set(
        {"chunk": chunk, "state": "running", "reserved_calls": calls, "reserved_at": SERVER_TIMESTAMP},
        merge=True,
    )


def others_spent(job: DocumentReference, chunk: int) -> Spent:
    """What the job's other chunks spent, plus the calls reserved by those that reserved first.

    A reservation stamped before this chunk's own (`reserve`; ties: the lower chunk number first)
    is counted, a later one is not: its chunk counts this one instead. One query over the chunk
    documents.
    """
    own = paths.chunk_id(chunk)
    names = ["calls", "reserved_calls", "reserved_at", "tokens", "cost_usd"]
    found = {s.id: s.to_dict() or {} for s in paths.chunks(job).select(names).stream()}
    mine = found.pop(own, {}).get("reserved_at")
    calls = reserved = tokens = 0
    cost = 0.0
    for chunk_id, data in found.items():
        calls += int(data.get("calls") or 0)
        tokens += int(data.get("tokens") or 0)
        cost += float(data.get("cost_usd") or 0.0)
        theirs = data.get("reserved_at")
        if mine is None or theirs is None or (theirs, chunk_id) < (mine, own):
            reserved += int(data.get("reserved_calls") or 0)
    return Spent(calls=calls, reserved_calls=reserved, tokens=tokens, cost_usd=cost)


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
