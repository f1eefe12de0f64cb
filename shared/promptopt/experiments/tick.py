"""The schedule tick (Cloud Scheduler → Pub/Sub `schedule-tick`): start due runs, re-drive idle work.

- Due schedules: every experiment whose `next_run_at` has passed starts one run for that slot. The
  run id derives from (experiment, slot), so a duplicated or late tick finds the run it already
  started; the experiment's `next_run_at` then moves to the next slot after now (missed slots are
  skipped, not run in a burst).
- Sweep: a queued or running run whose document has not changed for `lease` is advanced directly
  (its step message may have been lost); one that stays idle past `stuck_after` is failed with a
  reason, and its jobs are cancelled, so no run stays running forever.
- The platform's own sweeps ride on the same tick: step messages whose publish failed are sent
  from the outbox, and batch jobs and dataset versions without progress are re-driven or failed.
- Once per deployment, a bounded slice per tick until it is done, prompt heads stored before the
  `archived` flag get it (promptopt.prompts.backfill), so listings that filter on it find them.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from promptopt.auth import Principal, Role
from promptopt.errors import ApiError
from promptopt.experiments import engine, paths
from promptopt.experiments.models import ACTIVE_RUN_STATUSES
from promptopt.http.events import Delivery

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
STUCK_AFTER = timedelta(hours=6)
_LIMIT = 200


class Tick(BaseModel):
    """The scheduler's message (its content is not used: the tick's time is now)."""

    model_config = ConfigDict(extra="allow")


def on_tick(_message: Tick, _delivery: Delivery) -> str:
    """The tick function's handler."""
    return run_tick(engine.now())


def run_tick(now: datetime, *, lease: timedelta = LEASE, stuck_after: timedelta = STUCK_AFTER) -> str:
    """Send what the outbox holds, sweep jobs and versions, start due runs, sweep idle runs."""
    from promptopt import outbox
    from promptopt.batch import sweeper as batch_sweeper
    from promptopt.datasets import sweeper as dataset_sweeper

    sent = outbox.redrive_outbox(now=now)
    jobs = batch_sweeper.sweep_stuck(now=now)
    versions = dataset_sweeper.sweep_stuck(now=now)
    started = start_due(now)
    swept, failed = sweep(now, lease=lease, stuck_after=stuck_after)
    flagged = _backfill_prompts()
    return (
        f"outbox sent {sent.sent}; jobs re-driven {jobs.redriven}, failed {jobs.failed}; versions re-driven "
        f"{versions.redriven}, failed {versions.failed}; runs started {started}, re-driven {swept}, "
        f"failed {failed}; prompt heads flagged {flagged}"
    )


def _backfill_prompts() -> int:
    """This deployment's prompt backfill, one slice; a failure waits for the next tick."""
    from google.api_core import exceptions as gexc

    from promptopt.prompts import backfill

    try:
        return backfill.run_once().updated
    except gexc.GoogleAPICallError:
        log.exception("prompt backfill failed; the next tick carries on from its marker")
        return 0


def start_due(now: datetime) -> int:
    """Start one run per experiment whose schedule is due."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.clients import firestore_client
    from promptopt.experiments import runs

    query = (
        firestore_client()
        .collection_group(paths.EXPERIMENTS)
        .where(filter=FieldFilter("next_run_at", "<=", now))
        .limit(_LIMIT)
    )
    started = 0
    for snapshot in query.stream():
        data = snapshot.to_dict() or {}
        schedule = data.get("schedule") or {}
        slot = data.get("next_run_at")
        tenant = snapshot.reference.parent.parent.id
        if not schedule.get("enabled", True) or slot is None or data.get("deleting"):
            continue
        principal = Principal(subject="scheduler", tenant=tenant, role=Role.editor)
        slot_run = paths.run_ref(tenant, snapshot.id, paths.scheduled_run_id(snapshot.id, slot))
        try:
            if not slot_run.get().exists:  # a replayed slot finds its run: nothing new to count
                runs.start_run(principal=principal, experiment_id=snapshot.id, slot=slot)
                started += 1
        except ApiError as exc:  # an active run, the tenant's cap, a deleted prompt: this slot is skipped
            log.warning("scheduled run of %s at %s not started: %s", snapshot.id, slot, exc.code)
        _advance_schedule(snapshot, schedule, slot, now)
    return started


def _advance_schedule(snapshot: Any, schedule: dict[str, Any], slot: datetime, now: datetime) -> None:
    from google.api_core import exceptions as gexc

    from promptopt.experiments.models import Schedule
    from promptopt.experiments.schedule import next_run_at

    following = next_run_at(Schedule.model_validate(schedule), after=max(slot, now))
    # Conditional: another tick (or an edit of the schedule) may have moved it first.
    with contextlib.suppress(gexc.FailedPrecondition, gexc.Aborted, gexc.Conflict, gexc.NotFound):
        snapshot.reference.update(
            {"next_run_at": following, "updated_at": engine.now()},
            option=snapshot.reference._client.write_option(last_update_time=snapshot.update_time),
        )


def sweep(now: datetime, *, lease: timedelta, stuck_after: timedelta) -> tuple[int, int]:
    """Advance runs idle for `lease`; fail those idle past `stuck_after`. Returns (re-driven, failed)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.clients import firestore_client

    query = (
        firestore_client()
        .collection_group("runs")
        .where(filter=FieldFilter("status", "in", list(ACTIVE_RUN_STATUSES)))
        .where(filter=FieldFilter("updated_at", "<", now - lease))
        .limit(_LIMIT)
    )
    swept = failed = 0
    for snapshot in query.stream():
        data = snapshot.to_dict() or {}
        tenant, experiment_id = data["tenant"], data["experiment_id"]
        try:
            outcome = engine.advance(tenant, experiment_id, snapshot.id)
        except Exception:
            log.exception("sweeping run %s failed; the next tick tries again", snapshot.id)
            continue
        swept += 1
        log.info("swept run %s: %s", snapshot.id, outcome)
        stuck = outcome.startswith("waiting") and data["updated_at"] < now - stuck_after
        if stuck and _fail_stuck(snapshot, stuck_after):
            failed += 1
    return swept, failed


def _fail_stuck(snapshot: Any, stuck_after: timedelta) -> bool:
    data = snapshot.to_dict() or {}
    run, _ = engine.load(data["tenant"], data["experiment_id"], snapshot.id)
    return engine.fail(run, f"no progress for {stuck_after}; its evaluation jobs did not finish")
