"""The job state machine: every status change is a conditional write, so exactly one writer wins.

    queued ──(tasks enqueued)──► running ──(every chunk terminal)──► completed
       │                           │                             └─► evaluating ──► completed
       │                           ├──(cancel)──────────────► cancelled ◄──(cancel)── evaluating
       │                           └──(a chunk meets the budget)► budget_exhausted
       └──(enqueue failed)──► failed ──(same Idempotency-Key retried)──► queued

Every non-final status can be cancelled (CANCELLABLE), and every one has an exit when a dependency
fails for good (`promptopt.batch.sweeper`). A change that must be announced on Pub/Sub records its
message in the same atomic batch (`messages`, see `promptopt.outbox`), so it is never lost.

A change reads the job, checks the current status is one it may leave, and writes with the read's
update time as precondition; a concurrent change makes the write fail and the loop re-reads. The
job document is written only on these few transitions, never per row, so it is never hot (the
Firestore emulator times out concurrent transactions on one document; preconditions do not).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt import outbox
from promptopt.errors import Conflict

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

_ATTEMPTS = 8

TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "failed", "cancelled", "budget_exhausted", "completed", "evaluating"}),
    "running": frozenset({"completed", "evaluating", "cancelled", "budget_exhausted", "failed"}),
    "evaluating": frozenset({"completed", "failed", "cancelled"}),
    "failed": frozenset({"queued"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
    "budget_exhausted": frozenset(),
}

CANCELLABLE: tuple[str, ...] = ("queued", "running", "evaluating")
FINAL: tuple[str, ...] = ("completed", "failed", "cancelled", "budget_exhausted")
Messages = Callable[[dict[str, Any], str], list[outbox.Message]]


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


class Known(NamedTuple):
    """A job as its writer knows it: a snapshot `transition` starts from without reading it back.

    `data` is what the writer wrote, `update_time` its write's update time (the precondition).
    """

    data: dict[str, Any]
    update_time: Any
    exists: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The job's fields (a copy)."""
        return dict(self.data)


def transition(
    ref: DocumentReference,
    *,
    to: str | Callable[[dict[str, Any]], str | None],
    allowed_from: Collection[str] | None = None,
    fields: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    messages: Messages | None = None,
    writes: Callable[[Any], None] | None = None,
    snapshot: Any = None,
    deliver: bool = True,
) -> tuple[bool, dict[str, Any] | None]:
    """Move the job to `to` if its status allows; returns (changed, the job as it now is).

    See `move`, which this calls; it also returns the update time of what it wrote or read.
    """
    changed, known = move(
        ref,
        to=to,
        allowed_from=allowed_from,
        fields=fields,
        messages=messages,
        writes=writes,
        snapshot=snapshot,
        deliver=deliver,
    )
    return changed, known.data if known is not None else None


def move(
    ref: DocumentReference,
    *,
    to: str | Callable[[dict[str, Any]], str | None],
    allowed_from: Collection[str] | None = None,
    fields: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    messages: Messages | None = None,
    writes: Callable[[Any], None] | None = None,
    snapshot: Any = None,
    deliver: bool = True,
) -> tuple[bool, Known | None]:
    """Move the job to `to` if its status allows; returns (changed, the job as it now is, or None).

    `to` may be a function of the current job (None: no change). `allowed_from` narrows the
    statuses that may be left (default: any with `to` among its TRANSITIONS). `fields` are written
    along with the status. `messages(job, target)` are the Pub/Sub messages announcing the change:
    recorded in the outbox in the same batch, then published at once (see `promptopt.outbox`).
    `writes(batch)` adds other documents to that batch (written only if the change is made).
    `snapshot`: the job as the caller just read it, used for the first attempt instead of a read
    (the precondition still catches any change since). Returns (False, None) when the job does
    not exist. With `deliver=False` the messages are only recorded: the caller publishes them
    (`outbox.deliver`) when it is ready, and the outbox's redrive does if it never is. The job
    comes back as a `Known` stamped with the update time of the write (or of the read, unchanged),
    so a caller that goes on with it needs no read back.
    """
    from google.api_core import exceptions as gexc

    read = snapshot
    for _ in range(_ATTEMPTS):
        snapshot, read = read or ref.get(), None
        if not snapshot.exists:
            return False, None
        data = snapshot.to_dict() or {}
        current = str(data.get("status"))
        target = to(data) if callable(to) else to
        if target is None or target not in TRANSITIONS.get(current, frozenset()):
            return False, Known(data, snapshot.update_time)
        if allowed_from is not None and current not in allowed_from:
            return False, Known(data, snapshot.update_time)
        extra = fields(data) if callable(fields) else dict(fields or {})
        stamp = now()
        update = {**extra, "status": target, "updated_at": stamp}
        if target in FINAL:
            update.setdefault("finished_at", stamp)
        announce = messages(data, target) if messages is not None else []
        option = ref._client.write_option(last_update_time=snapshot.update_time)
        try:
            if announce or writes is not None:
                batch = ref._client.batch()
                batch.update(ref, update, option=option)
                for message in announce:
                    outbox.record(batch, message)
                if writes is not None:
                    writes(batch)
                written = batch.commit()[0]  # the job's update comes first
            else:
                written = ref.update(update, option=option)
        except gexc.AlreadyExists:
            raise  # a document `writes` creates exists already: another try would fail the same way
        except (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted):
            continue  # someone else changed the job meanwhile: look again
        if deliver:
            outbox.deliver(announce)
        return True, Known({**data, **update}, written.update_time)
    raise Conflict("the job is changing too often to update; retry shortly", code="job_busy")


def cancel_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What a cancel writes besides the status: its reason, and an evaluation that will not run."""
    fields: dict[str, Any] = {"stop_reason": "cancelled"}
    evaluation = data.get("evaluation")
    if isinstance(evaluation, dict) and evaluation.get("status") == "pending":
        fields["evaluation"] = {**evaluation, "status": "not_run"}
    return fields
