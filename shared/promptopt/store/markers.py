"""Done-markers: run a step once per key, however often its trigger is delivered.

A marker is a document created-if-absent when a delivery starts the step. It holds a lease while
the step runs and `state: done` once it finished, so a later delivery of the same message is a
duplicate, a concurrent one waits (raises `StepBusy`, so its trigger redelivers it), and one that
finds an expired lease takes over from a crashed holder with a conditional write (one winner).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Claim = Literal["claimed", "done"]


class StepBusy(RuntimeError):
    """Another delivery holds the marker's lease: raise so the trigger redelivers later."""


def _now() -> datetime:
    return datetime.now(UTC)


def claim(marker: Any, *, lease: timedelta) -> Claim:
    """Take `marker` (a Firestore DocumentReference): "claimed" to run the step, "done" for a duplicate.

    Raises StepBusy while another delivery's lease is live or when it took the marker first.
    """
    from google.api_core import exceptions as gexc

    fresh = {"state": "running", "lease_until": _now() + lease, "created_at": _now()}
    try:
        marker.create(fresh)
        return "claimed"
    except (gexc.AlreadyExists, gexc.Conflict):
        pass
    snapshot = marker.get()
    existing = snapshot.to_dict() or {}
    if existing.get("state") == "done":
        return "done"
    if existing.get("lease_until") is not None and existing["lease_until"] > _now():
        raise StepBusy(f"{marker.path} is held by another delivery")
    try:
        marker.update(fresh, option=marker._client.write_option(last_update_time=snapshot.update_time))
    except (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted):
        raise StepBusy(f"{marker.path} was taken over by another delivery") from None
    return "claimed"


def finish(marker: Any, **fields: Any) -> None:
    """Mark the step done (later deliveries are duplicates)."""
    marker.update({"state": "done", "finished_at": _now(), **fields})
