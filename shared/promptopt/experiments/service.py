"""Experiments: create (checked against what exists), read, list, update and delete.

An experiment is one document (`paths.experiment_ref`) holding its settings as the API shows
them, plus what its runs did (`active_run_id`, `last_run_*`, `runs`, written by the run engine)
and `next_run_at` for the schedule tick. The dataset version is pinned at creation; the prompt
selector is kept as given (a label follows the label). With an Idempotency-Key the id derives
from the key and the body, so a retried create finds the experiment it already made.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc

from promptopt.errors import Conflict, InvalidRequest
from promptopt.experiments import paths
from promptopt.experiments import schedule as schedules
from promptopt.experiments.catalog import UPDATE_ATTEMPTS, created_dict, snapshot_of, view_dict
from promptopt.experiments.models import ExperimentCreate, ExperimentUpdate, Schedule

if TYPE_CHECKING:
    from promptopt.auth import Principal

log = logging.getLogger(__name__)

_DELETE_BATCH = 400  # under Firestore's 500 writes per batch
_UPDATE_ATTEMPTS = 5


def new_experiment_id(tenant: str, body: ExperimentCreate, idempotency_key: str | None) -> str:
    """A random id, or one derived from the Idempotency-Key and the body when one is given."""
    if idempotency_key is None:
        return paths.new_experiment_id()
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return paths.derived_id("ex_", tenant, idempotency_key, canonical)


def create_experiment(
    *, principal: Principal, body: ExperimentCreate, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Check the request against what exists, store the experiment and answer it with its estimate.

    Answers ExperimentCreated's fields as a plain dict (`catalog.created_dict`).
    """
    # What only a create needs loads here: experiments_update imports this module too.
    from promptopt.experiments.estimate import estimate_resolved
    from promptopt.experiments.resolve import resolve

    experiment_id = new_experiment_id(principal.tenant, body, idempotency_key)
    ref = paths.experiment_ref(principal.tenant, experiment_id)
    if idempotency_key is not None:
        existing = ref.get()
        if existing.exists:
            return created_dict(existing.to_dict() or {})
    resolved = resolve(principal=principal, body=body)
    estimate = estimate_resolved(resolved, body)
    now = datetime.now(UTC)
    doc: dict[str, Any] = {
        "experiment_id": experiment_id,
        "name": body.name,
        "name_lower": body.name.lower(),
        "description": body.description,
        "mode": body.mode,
        "prompt": body.prompt.model_dump(mode="json"),
        "dataset": {**body.dataset.model_dump(mode="json"), "version": resolved.dataset.version},
        "target_model": resolved.target_model,
        "optimizer_model": resolved.optimizer_model,
        "metric": (resolved.metric or body.metric).model_dump(mode="json"),
        "secondary_metrics": [m.model_dump(mode="json") for m in resolved.secondary_metrics],
        "optimizer": body.optimizer.model_dump(mode="json"),
        "budget": body.budget.model_dump(mode="json"),
        "promote_label": body.promote_label,
        "schedule": body.schedule.model_dump(mode="json") if body.schedule is not None else None,
        "regression": body.regression.model_dump(mode="json") if body.regression is not None else None,
        "temperature": body.temperature,
        "max_tokens": body.max_tokens,
        "active_run_id": None,
        "last_run_id": None,
        "last_run_status": None,
        "runs": 0,
        "next_run_at": resolved.next_run_at,
        "estimate": estimate.model_dump(mode="json"),
        "created_at": now,
        "updated_at": now,
        "created_by": principal.subject,
    }
    try:
        ref.create(doc)
    except (gexc.AlreadyExists, gexc.Conflict):
        if idempotency_key is None:
            raise
        # An earlier delivery of this very request stored it first: answer with that one.
        return created_dict(ref.get().to_dict() or {})
    log.info("experiment %s created", experiment_id, extra={"fields": {"experiment_id": experiment_id}})
    return created_dict(doc)


def _changes(data: dict[str, Any], body: ExperimentUpdate) -> dict[str, Any]:
    """The fields a PATCH changes; an explicit null clears the schedule or the promote label."""
    given = body.model_fields_set
    if not given:
        raise InvalidRequest(
            "give at least one of name, description, schedule, schedule_enabled, promote_label",
            code="empty_update",
        )
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes.update(name=body.name, name_lower=body.name.lower())
    if body.description is not None:
        changes["description"] = body.description
    if "promote_label" in given:
        changes["promote_label"] = body.promote_label
    if "schedule" in given or body.schedule_enabled is not None:
        current = data.get("schedule")
        schedule = Schedule.model_validate(current) if current else None
        if "schedule" in given:
            schedule = body.schedule
        if body.schedule_enabled is not None:
            if schedule is None:
                raise InvalidRequest(
                    "this experiment has no schedule to turn on or off; set one with `schedule`",
                    code="no_schedule",
                )
            schedule = schedule.model_copy(update={"enabled": body.schedule_enabled})
        if schedule is not None:
            schedules.validate(schedule)
        changes["schedule"] = schedule.model_dump(mode="json") if schedule is not None else None
        changes["next_run_at"] = schedules.next_run_at(schedule)
    return changes


def update_experiment(*, principal: Principal, experiment_id: str, body: ExperimentUpdate) -> dict[str, Any]:
    """Rename, describe, set, clear, pause or resume the schedule, or change the promote label.

    Answers the experiment as an ExperimentView's fields, as a plain dict (`catalog.view_dict`).

    The write is conditional on the document being unchanged since it was read, so a concurrent
    update (another PATCH, a run starting) is never overwritten with stale values: it is re-read.
    """
    for _attempt in range(UPDATE_ATTEMPTS):
        snapshot = snapshot_of(principal, experiment_id)
        data, ref = snapshot.to_dict() or {}, snapshot.reference
        changes = _changes(data, body)
        changes["updated_at"] = datetime.now(UTC)
        try:
            ref.update(changes, option=ref._client.write_option(last_update_time=snapshot.update_time))
        except (gexc.FailedPrecondition, gexc.Aborted):
            continue
        return view_dict({**data, **changes})
    raise Conflict(
        f"experiment {experiment_id} is changing too often to update; retry shortly",
        code="experiment_busy",
        retry_after_s=2,
    )
