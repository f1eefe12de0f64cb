"""Per-row results, written create-if-absent in batches.

A result's id is its row number, so a duplicate delivery can never record a row twice: the first
write wins. Creates go out as one batch per `flush_every` rows; a batch is atomic, so if a
concurrent delivery already wrote one of its rows the batch fails as a whole and its rows are
re-sent one by one, each ignoring "already exists".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptopt.batch import paths
from promptopt.batch.state import now

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

log = logging.getLogger(__name__)

# What scoring reads of a result (see evaluation_step).
SCORED_FIELDS = ("status", "output", "reference", "judge")
# Fields read back to learn which rows of a chunk are done and what they cost.
SUMMARY_FIELDS = [
    "status",
    "n_calls",
    "n_judge_calls",
    "n_cached",
    "input_tokens",
    "output_tokens",
    "cost_usd",
]


@dataclass
class ChunkTotals:
    """Sums over a chunk's terminal rows."""

    succeeded: int = 0
    failed: int = 0
    cache_hits: int = 0
    calls: int = 0  # every model call, judge calls included
    judge_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, result: dict[str, Any]) -> None:
        """Count one result document."""
        if result.get("status") == "failed":
            self.failed += 1
        else:
            self.succeeded += 1
        self.cache_hits += int(result.get("n_cached") or 0)
        self.calls += int(result.get("n_calls") or 0)
        self.judge_calls += int(result.get("n_judge_calls") or 0)
        self.input_tokens += int(result.get("input_tokens") or 0)
        self.output_tokens += int(result.get("output_tokens") or 0)
        self.cost_usd += float(result.get("cost_usd") or 0.0)

    def as_fields(self) -> dict[str, Any]:
        """The chunk document's totals."""
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cache_hits": self.cache_hits,
            "calls": self.calls,
            "judge_calls": self.judge_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.input_tokens + self.output_tokens,
            "cost_usd": round(self.cost_usd, 8),
        }


def read_done(job: DocumentReference, rows: range) -> dict[int, dict[str, Any]]:
    """The rows of `rows` that already have a result, with their summaries (one batched read)."""
    from promptopt.clients import firestore_client

    if not rows:
        return {}
    results = paths.results(job)
    refs = [results.document(paths.row_id(r)) for r in rows]
    done: dict[int, dict[str, Any]] = {}
    for snapshot in firestore_client().get_all(refs, field_paths=SUMMARY_FIELDS):
        if snapshot.exists:
            done[int(snapshot.id)] = snapshot.to_dict() or {}
    return done


@dataclass
class ResultWriter:
    """Buffers result documents and creates them in batches."""

    job: DocumentReference
    flush_every: int = 100
    written: int = 0
    duplicates: int = 0
    _buffer: list[dict[str, Any]] = field(default_factory=list)

    def add(self, doc: dict[str, Any]) -> None:
        """Queue one result; sends a batch when enough are queued."""
        self._buffer.append(doc)
        if len(self._buffer) >= self.flush_every:
            self.flush()

    @property
    def queued(self) -> int:
        """Results queued and not sent yet."""
        return len(self._buffer)

    def take(self) -> list[dict[str, Any]]:
        """The queued results, taken off the queue for the caller to write (see `written_elsewhere`)."""
        pending, self._buffer = self._buffer, []
        return pending

    def written_elsewhere(self, docs: list[dict[str, Any]]) -> None:
        """Count results from `take` as written (the caller's commit created them)."""
        self.written += len(docs)

    def put_back(self, docs: list[dict[str, Any]]) -> None:
        """Queue results from `take` again (the caller's commit failed)."""
        self._buffer = docs + self._buffer

    def flush(self) -> None:
        """Send whatever is queued."""
        if not self._buffer:
            return
        from google.api_core import exceptions as gexc

        pending, self._buffer = self._buffer, []
        results = paths.results(self.job)
        stamp = now()
        batch = self.job._client.batch()
        for doc in pending:
            batch.create(results.document(paths.row_id(doc["row"])), {**doc, "created_at": stamp})
        try:
            batch.commit()
            self.written += len(pending)
            return
        except (gexc.AlreadyExists, gexc.Conflict):
            log.info("a concurrent delivery wrote some of these rows; writing one by one")
        for doc in pending:
            try:
                results.document(paths.row_id(doc["row"])).create({**doc, "created_at": stamp})
                self.written += 1
            except (gexc.AlreadyExists, gexc.Conflict):
                self.duplicates += 1
