"""Detecting that every chunk is terminal and taking the job to its next state exactly once.

Each chunk marks its own document `done` and then counts the done chunks (`count()`, one
aggregation read). Firestore queries see every committed write, so whichever chunk commits last
sees the full count; several may see it at once. Exactly one of them then creates the marker
`markers/completed` (create-if-absent); its creator moves the job (running → completed or
evaluating; budget_exhausted stays) with `batch-completed` recorded in the outbox in the same
batch (published at once, and redriven until Pub/Sub acknowledges it), then flags the marker
published. If it crashes in between, its task is retried and, finding its own unpublished marker,
finishes the step; a marker left unpublished for `STALE_AFTER` is finished by any later chunk (or
the sweeper). Consumers de-duplicate, so the rare second message is harmless. A one-chunk job
writes its last results and its chunk record and creates the marker in one commit, and its totals
are the chunk's own.
For an experiment run's job the chunk goes on with the next steps itself: it scores the job and
completes it, with its scores and the marker flagged published, in one commit (`_finish_scored`),
then advances the run; failing that, it takes the usual way and scores it next (`_carry_on`).
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from promptopt import outbox
from promptopt.batch import events, paths
from promptopt.batch.aggregate import aggregate
from promptopt.batch.state import Known, move, now
from promptopt.batch.totals import TOTAL_FIELDS, job_totals
from promptopt.batch.writer import ChunkTotals

if TYPE_CHECKING:
    from collections.abc import Callable

    from google.cloud.firestore import DocumentReference

log = logging.getLogger(__name__)

MARKER = "completed"
STALE_AFTER = timedelta(minutes=5)
_PUBLISHED = {"published": True}  # on the marker: the completion step is done


class ResultsNotWritten(Exception):
    """`finish_only_chunk` wrote nothing: a result it was given (or the marker) exists already.

    The caller writes the results its own way, then finishes without them.
    """


def finish_chunk(job: DocumentReference, chunk: int, totals: ChunkTotals, *, attempt: int) -> None:
    """Record the chunk as terminal with what its rows consumed (replacing any reservation)."""
    paths.chunks(job).document(paths.chunk_id(chunk)).set(_chunk_fields(chunk, totals, attempt), merge=True)


def _chunk_fields(chunk: int, totals: ChunkTotals, attempt: int) -> dict[str, Any]:
    return {
        "chunk": chunk,
        "state": "done",
        "reserved_calls": 0,
        "attempt": attempt,
        "updated_at": now(),
    } | totals.as_fields()


def finish_only_chunk(
    tenant: str,
    job: DocumentReference,
    totals: ChunkTotals,
    *,
    attempt: int,
    inline: bool = False,
    rows: list[dict[str, Any]] | None = None,
    snapshot: Any = None,
    results: list[dict[str, Any]] | None = None,
    also: Callable[[Any], None] | None = None,
) -> bool:
    """A one-chunk job's end: its last results, its chunk record and the completion marker in one commit.

    The job's totals are then the chunk's own (no aggregation read). If the marker exists (a
    retried delivery, or a crashed completion step), this falls back to `finish_chunk` and
    `maybe_complete`, which finish whatever was left. True if this call took the completion step.
    `rows`: every result of the job as this delivery wrote it (scoring then reads none).
    `snapshot`: the job as the chunk read it, where moving it on starts (re-read if it changed).
    `results`: result documents not written yet (one write fewer before the run's next step); if
    the commit fails, `ResultsNotWritten` is raised instead of the fallback.
    `also(batch)`: the caller's own writes for that commit (the fresh answers for the cache); if
    the commit fails, `ResultsNotWritten` is raised too, so the caller makes them its own way.
    """
    from google.api_core import exceptions as gexc

    marker = paths.marker_ref(job, MARKER)
    fields = totals.as_fields()
    totals_ = {name: fields[name] for name in TOTAL_FIELDS}

    def writes(batch: Any, *, published: bool = False) -> None:
        stamp = now()
        for doc in results or []:  # created as ResultWriter.flush creates them
            batch.create(paths.results(job).document(paths.row_id(doc["row"])), {**doc, "created_at": stamp})
        batch.set(
            paths.chunks(job).document(paths.chunk_id(0)), _chunk_fields(0, totals, attempt), merge=True
        )
        done = _PUBLISHED | {"published_at": stamp} if published else {"published": False}
        batch.create(marker, {"by_chunk": 0, "created_at": stamp} | done)
        if also is not None:
            also(batch)

    if inline and rows is not None:
        # A run's job whose every row this delivery holds: all of the above, its scores and its
        # move to completed in one commit (one write fewer on the run's critical path). If that
        # writes nothing (a row or the marker exists, the job changed), the two commits below do.
        step = {"totals": totals_, "rows_done_at": now()}
        if _finish_scored(
            tenant, job, step, rows, snapshot, writes=functools.partial(writes, published=True)
        ):
            return True
    batch = job._client.batch()
    writes(batch)
    try:
        batch.commit()
    except (gexc.AlreadyExists, gexc.Conflict, gexc.FailedPrecondition):
        if results or also is not None:
            raise ResultsNotWritten from None
        finish_chunk(job, 0, totals, attempt=attempt)
        return maybe_complete(tenant=tenant, job=job, chunks=1, chunk=0, inline=inline, snapshot=snapshot)
    if not _complete(tenant, job, totals=totals_, inline=inline, rows=rows, snapshot=snapshot):
        marker.update(_PUBLISHED | {"published_at": now()})
    return True


def done_chunks(job: DocumentReference) -> int:
    """How many chunks are terminal (one count() aggregation)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = paths.chunks(job).where(filter=FieldFilter("state", "==", "done"))
    return int(aggregate(query, count="n").get("n") or 0)


def maybe_complete(
    *,
    tenant: str,
    job: DocumentReference,
    chunks: int,
    chunk: int,
    inline: bool = False,
    snapshot: Any = None,
) -> bool:
    """If every chunk is done, take the job's completion step (once); True if this call took it.

    `chunk` is the caller's own chunk, already recorded done (-1: a sweep). A one-chunk job is
    then complete without counting. `inline`: go on with the next step in this process (see
    `_carry_on`). `snapshot`: the job as the caller read it (see `finish_only_chunk`).
    """
    from google.api_core import exceptions as gexc

    if not (chunks == 1 and chunk == 0) and done_chunks(job) < chunks:
        return False
    marker = paths.marker_ref(job, MARKER)
    try:
        marker.create({"by_chunk": chunk, "published": False, "created_at": now()})
    except (gexc.AlreadyExists, gexc.Conflict):
        existing = marker.get().to_dict() or {}
        if existing.get("published"):
            return False
        stale = existing.get("created_at") is not None and existing["created_at"] < now() - STALE_AFTER
        if existing.get("by_chunk") != chunk and not stale:
            return False  # its creator is finishing the step (or its task will retry it)
    if not _complete(tenant, job, inline=inline, snapshot=snapshot):
        marker.update(_PUBLISHED | {"published_at": now()})
    return True


def _next_status(data: dict[str, Any]) -> str | None:
    if data.get("status") not in ("queued", "running"):
        return None
    return "evaluating" if data.get("evaluation") else "completed"


def _announce(tenant: str, job: DocumentReference) -> Any:
    def messages(_data: dict[str, Any], target: str) -> list[outbox.Message]:
        return [events.completed(tenant, job.id, target)]

    return messages


def _complete(
    tenant: str,
    job: DocumentReference,
    *,
    totals: dict[str, Any] | None = None,
    inline: bool = False,
    rows: list[dict[str, Any]] | None = None,
    snapshot: Any = None,
) -> bool:
    """Take the job to its next state; True if the marker was flagged published with it."""
    totals = totals if totals is not None else job_totals(job)
    fields = {"totals": totals, "rows_done_at": now()}  # when its rows were done (before scoring)
    if inline and _finish_scored(tenant, job, fields, rows, snapshot):
        return True
    changed, known = move(
        job,
        to=_next_status,
        fields=fields,
        messages=_announce(tenant, job),
        deliver=not inline,
        snapshot=snapshot,
    )
    if known is None:
        return False
    status = str(known.data.get("status"))
    if changed and inline:
        _carry_on(tenant, job, status, rows, known)
    if not changed:
        # Stopped early (cancelled, budget): freeze the totals now that no chunk will write again.
        job.update({"totals": totals, "updated_at": now()})
    log.info(
        "job %s finished its rows: %s", job.id, status, extra={"fields": {"job_id": job.id, "status": status}}
    )
    if not changed and status in ("completed", "evaluating", "budget_exhausted"):
        # A budget stop, or a retried step whose change is already made: make sure it is announced.
        outbox.ensure(events.completed(tenant, job.id, status))
    return False


def _finish_scored(
    tenant: str,
    job: DocumentReference,
    fields: dict[str, Any],
    rows: list[dict[str, Any]] | None,
    snapshot: Any,
    *,
    writes: Callable[[Any], None] | None = None,
) -> bool:
    """A run's evaluation job, scored and completed here in one commit (see evaluation_step).

    One commit on the critical path of every step of a run instead of two (running → evaluating,
    then evaluating → completed), and no batch-completed recorded, published or retired. False:
    the job is completed the usual way (a failure to score here is logged, then retried that way).
    `writes(batch)`: the chunk's own last writes for that commit, the marker created published
    among them (by default the existing marker is flagged published there).
    """
    from google.api_core import exceptions as gexc

    from promptopt.batch import evaluation_step

    marker = paths.marker_ref(job, MARKER)

    def published(batch: Any) -> None:  # in the same commit: one write fewer
        batch.update(marker, _PUBLISHED | {"published_at": now()})

    try:
        return evaluation_step.finish_scored(
            tenant, job, fields=fields, rows=rows, snapshot=snapshot, also=writes or published
        )
    except gexc.AlreadyExists:  # a concurrent delivery wrote some of the chunk's `writes` first
        log.info("job %s: a row or its marker exists already; completing it as usual", job.id)
        return False
    except Exception:
        log.warning(
            "scoring job %s as its rows finished failed; completing it as usual", job.id, exc_info=True
        )
        return False


def _carry_on(
    tenant: str, job: DocumentReference, status: str, rows: list[dict[str, Any]] | None, known: Known
) -> None:
    """Score the job in this process (which then advances the run that owns it).

    Each hop through Pub/Sub costs a publish, a push and a cold read of what the last step just
    wrote, on the critical path of every step of a run; the chunk that completed the job has all
    of it at hand. `batch-completed` was recorded in the outbox with the change: once the job is
    scored it is retired unpublished (`outbox.handled`); if scoring fails here it is published at
    once, and if this process dies first the outbox's redrive publishes it.
    """
    message = events.completed(tenant, job.id, status)
    if status != "evaluating":
        outbox.deliver([message])
        return
    from promptopt.batch import evaluation_step

    try:
        evaluation_step.evaluate(tenant, job.id, inline=True, rows=rows, known=known)
    except Exception:
        log.warning("scoring job %s right away failed; batch-completed will", job.id, exc_info=True)
        outbox.deliver([message])
        return
    outbox.handled([message])
