"""No state without an exit: re-drive batch jobs that stopped making progress, or fail them.

Every step of a job is driven by an at-least-once delivery (a Cloud Task per chunk, a Pub/Sub
message for the evaluation), and a delivery can be lost for good: a chunk's last attempt dies
on an infrastructure error (Cloud Tasks has no dead-letter queue), a create crashes between
writing the job and enqueueing it, a message is dead-lettered. A scheduler tick calls
`sweep_stuck`; for each job that is not final (and each stopped job whose evaluation is due) it
records what it sees (status, results, done chunks) in `markers/sweep`. A job whose picture has
not changed for `lease` is stuck and its step is driven again:

    queued       enqueue every chunk (under a fresh task epoch) and move it to running
    running      enqueue the chunks not done; if all are done, take the completion step
    evaluating   publish batch-completed again (through the outbox)

After `max_tries` re-drives without progress the job fails with a reason (`stuck`); an
evaluation that never ran is failed on a stopped (budget_exhausted) job. Sweeps may overlap:
every action is one the normal path already tolerates twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from promptopt import outbox
from promptopt.batch import chunks as chunk_tasks
from promptopt.batch import completion, events, paths
from promptopt.batch.aggregate import aggregate
from promptopt.batch.state import now as utcnow
from promptopt.batch.state import transition

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)
MAX_TRIES = 3
MARKER = "sweep"
_UNFINISHED = ["queued", "running", "evaluating"]


@dataclass
class SweepReport:
    """What one sweep saw and did (job ids)."""

    checked: int = 0
    redriven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _candidates(tenant: str | None, limit: int) -> list[Any]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.clients import firestore_client

    base = paths.jobs(tenant) if tenant else firestore_client().collection_group(paths.JOBS)
    unfinished = base.where(filter=FieldFilter("status", "in", _UNFINISHED)).limit(limit)
    stopped = (
        base.where(filter=FieldFilter("status", "==", "budget_exhausted"))
        .where(filter=FieldFilter("evaluation.status", "==", "pending"))
        .limit(limit)
    )
    return [*unfinished.stream(), *stopped.stream()]


def sweep_stuck(
    *,
    now: datetime | None = None,
    lease: timedelta = LEASE,
    max_tries: int = MAX_TRIES,
    limit: int = 200,
    tenant: str | None = None,
) -> SweepReport:
    """Find jobs without progress for `lease`; re-drive their step, or fail them after `max_tries`.

    Args:
        now: the time to judge by (tests pass a later one).
        lease: how long a job may go without visible progress.
        max_tries: re-drives before the job fails with code `stuck`.
        limit: jobs looked at per status group.
        tenant: only this tenant's jobs (default: all, through a collection-group query).
    """
    at = now or utcnow()
    report = SweepReport()
    for snapshot in _candidates(tenant, limit):
        report.checked += 1
        try:
            outcome = _sweep_job(snapshot.reference, snapshot.to_dict() or {}, at, lease, max_tries)
        except Exception:
            log.exception("sweeping job %s failed", snapshot.id)
            continue
        if outcome == "redriven":
            report.redriven.append(snapshot.id)
        elif outcome == "failed":
            report.failed.append(snapshot.id)
    if report.redriven or report.failed:
        log.info("batch sweep: %d re-driven, %d failed", len(report.redriven), len(report.failed))
    return report


def _fingerprint(job: DocumentReference, data: dict[str, Any]) -> str:
    results = int(aggregate(paths.results(job), count="n").get("n") or 0)
    evaluation = (data.get("evaluation") or {}).get("status")
    return f"{data.get('status')}/{evaluation}/{results}/{completion.done_chunks(job)}"


def _sweep_job(
    job: DocumentReference, data: dict[str, Any], at: datetime, lease: timedelta, max_tries: int
) -> str:
    marker = paths.marker_ref(job, MARKER)
    seen = marker.get().to_dict() or {}
    fingerprint = _fingerprint(job, data)
    if seen.get("fingerprint") != fingerprint:
        marker.set({"fingerprint": fingerprint, "observed_at": at, "tries": 0})
        return "progress"
    if seen["observed_at"] + lease > at:
        return "waiting"
    tries = int(seen.get("tries") or 0)
    tenant = job.parent.parent.id
    if tries >= max_tries:
        _fail(tenant, job, data, lease, tries)
        marker.set({"fingerprint": "failed", "observed_at": at, "tries": tries})
        return "failed"
    _redrive(tenant, job, data, at)
    marker.set({"fingerprint": fingerprint, "observed_at": at, "tries": tries + 1})
    return "redriven"


def _redrive(tenant: str, job: DocumentReference, data: dict[str, Any], at: datetime) -> None:
    status = data.get("status")
    n_chunks = int(data["chunks"])
    log.warning("job %s made no progress (%s): re-driving it", job.id, status)
    if status in ("evaluating", "budget_exhausted"):
        _republish(events.completed(tenant, job.id, str(status)))
        return
    done = {
        s.id
        for s in paths.chunks(job).select(["state"]).stream()
        if (s.to_dict() or {}).get("state") == "done"
    }
    missing = [c for c in range(n_chunks) if paths.chunk_id(c) not in done]
    if status == "running" and not missing:
        completion.maybe_complete(tenant=tenant, job=job, chunks=n_chunks, chunk=-1)
        return
    # Task names of earlier epochs may be spent (Cloud Tasks keeps them a while): a fresh epoch.
    epoch = 1_000_000 + int(at.timestamp())
    chunk_tasks.enqueue(
        tenant=tenant, job_id=job.id, chunks=range(n_chunks) if status == "queued" else missing,
        epoch=epoch, queue=str(data["queue"]), sizes=(int(data["chunk_size"]), int(data["total_rows"])),
    )  # fmt: skip
    if status == "queued":
        transition(job, to="running", allowed_from=("queued",))


def _republish(message: outbox.Message) -> None:
    """Send a message again even if it was sent (its consumer may have lost it); consumers dedupe."""
    batch = outbox.ref(message)._client.batch()
    outbox.record(batch, message)
    batch.commit()
    outbox.deliver([message])


def _fail(tenant: str, job: DocumentReference, data: dict[str, Any], lease: timedelta, tries: int) -> None:
    minutes = int(lease.total_seconds() // 60)
    error = {
        "code": "stuck",
        "message": f"the job made no progress for {minutes} minutes after {tries} re-drives; "
        "its rows so far are kept: run it again for the rest",
    }
    log.error("job %s failed: no progress after %d re-drives", job.id, tries)
    evaluation = data.get("evaluation")
    failed_eval = {**evaluation, "status": "failed", "error": error} if isinstance(evaluation, dict) else None
    if data.get("status") == "budget_exhausted":  # final already: only its evaluation gets an exit
        message = events.evaluated(tenant, job.id, "failed")
        batch = job._client.batch()
        batch.update(job, {"evaluation": failed_eval, "updated_at": utcnow()})
        outbox.record(batch, message)
        batch.commit()
        outbox.deliver([message])
        return

    def fields(current: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"error": error, "stop_reason": "stuck"}
        if current.get("status") == "evaluating" and failed_eval is not None:
            out["evaluation"] = failed_eval
        return out

    def messages(current: dict[str, Any], _target: str) -> list[outbox.Message]:
        if current.get("status") == "evaluating":
            return [events.evaluated(tenant, job.id, "failed")]
        return [events.completed(tenant, job.id, "failed")]

    transition(job, to="failed", allowed_from=_UNFINISHED, fields=fields, messages=messages)
