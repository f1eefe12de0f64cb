"""Who makes a step's optimizer calls: the first delivery to claim the step, and no other.

Concurrent or repeated deliveries of one run's messages each compute its next step, and only one
write wins (engine's precondition on the run document). Reads are cheap to repeat; optimizer calls
are not, so a transition that is about to call the optimizer first creates the step's claim
(`runs/{run_id}/claims/{key}`, a conditional create): a delivery that finds another holder's live
claim exits without calling the model. The holder keeps its claim across its own retries, releases it
when its transition raises (the message is redelivered and claims again), and a holder that died
leaves a claim that expires after `LEASE`: shorter than the sweeper's idle lease, so the sweep that
re-drives the stalled run takes the step over.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

LEASE = timedelta(minutes=4)  # below promptopt.experiments.tick.LEASE (5 minutes)


class Claimed(Exception):
    """Another delivery holds the step's claim and is making its optimizer calls."""


def _ref(run_ref: Any, key: str) -> Any:
    return run_ref.collection("claims").document(key)


def claim(run_ref: Any, key: str, token: str, *, now: datetime) -> None:
    """Hold step `key` for the delivery `token`, or raise `Claimed` if another delivery holds it."""
    from google.api_core import exceptions as gexc

    ref = _ref(run_ref, key)
    held = {"token": token, "claimed_at": now, "expires_at": now + LEASE}
    try:
        ref.create(held)
        return
    except gexc.AlreadyExists:
        pass
    snapshot = ref.get()
    data = snapshot.to_dict() or {}
    if data.get("token") == token:
        return  # our own claim, from an earlier attempt of this delivery
    if snapshot.exists and data.get("expires_at") and data["expires_at"] > now:
        raise Claimed(key)
    try:  # its holder died (or released it): take it over unless another delivery just did
        if snapshot.exists:
            option = ref._client.write_option(last_update_time=snapshot.update_time)
            ref.update(held, option=option)
        else:
            ref.create(held)
    except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Conflict, gexc.Aborted) as exc:
        raise Claimed(key) from exc


def release(run_ref: Any, key: str, token: str) -> None:
    """Give up a claim this delivery holds (its transition failed), so a redelivery may take it."""
    from google.api_core import exceptions as gexc

    ref = _ref(run_ref, key)
    snapshot = ref.get()
    if (snapshot.to_dict() or {}).get("token") != token:
        return
    with contextlib.suppress(gexc.FailedPrecondition, gexc.NotFound, gexc.Conflict):  # taken over
        ref.delete(option=ref._client.write_option(last_update_time=snapshot.update_time))
