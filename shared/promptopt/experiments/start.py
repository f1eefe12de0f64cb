"""Starting a run: pin the prompt and dataset versions, plan it, write it and its first step's message.

Apart from `runs` (which answers models) so that POST …/start loads no pydantic on its cold start:
the run is answered as `run_view.run_dict`, the experiment's stored optimizer settings are read
as stored (`stored_settings`), and the prompt through `prompts.service.get_prompt_view`. Only a
body, or settings stored before a field existed, go through the models.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptopt import outbox
from promptopt.errors import ApiError, Conflict
from promptopt.experiments import paths, run_view
from promptopt.experiments.run_view import ACTIVE as ACTIVE_RUN_STATUSES
from promptopt.experiments.run_view import load_experiment as _experiment

if TYPE_CHECKING:
    from promptopt.auth import Principal

log = logging.getLogger(__name__)
STEP_TOPIC = "experiment-step"
DEFAULT_MAX_ACTIVE_RUNS = 3


class TooManyRuns(ApiError):
    """The tenant already has its allowance of active runs."""

    status, code, title = 429, "too_many_runs", "Too many active runs"


def max_active_runs() -> int:
    """Active runs a tenant may have at once (PROMPTOPT_MAX_ACTIVE_RUNS)."""
    return int(os.environ.get("PROMPTOPT_MAX_ACTIVE_RUNS") or DEFAULT_MAX_ACTIVE_RUNS)


def _count_active(tenant: str) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.batch.aggregate import aggregate
    from promptopt.clients import firestore_client

    query = (
        firestore_client()
        .collection_group("runs")
        .where(filter=FieldFilter("tenant", "==", tenant))
        .where(filter=FieldFilter("status", "in", list(ACTIVE_RUN_STATUSES)))
    )
    return int(aggregate(query, count="n").get("n") or 0)


def _pin(principal: Principal, experiment: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The run's config: the prompt version and dataset version resolved now, and its plan."""
    from promptopt.datasets.rows import resolve_version
    from promptopt.experiments.plan import Sizes, make_plan
    from promptopt.prompts import service as prompts

    selector = experiment["prompt"]
    label = selector.get("label")
    if experiment.get("mode") == "regression":
        label = (experiment.get("regression") or {}).get("label") or label
    found = prompts.get_prompt_view(
        principal=principal,
        prompt_id=selector["prompt_id"],
        version=None if label else selector.get("version"),
        label=label,
    )
    dataset = experiment["dataset"]
    ready = resolve_version(
        tenant=principal.tenant, dataset_id=dataset["dataset_id"], version=dataset.get("version")
    )
    settings = stored_settings(experiment["optimizer"])
    splits = {
        "optimize": dataset.get("optimize_split", "train"),
        "accept": dataset.get("accept_split", "validation"),
        "report": dataset.get("report_split", "test"),
    }
    if experiment.get("mode") == "regression":
        splits["report"] = (experiment.get("regression") or {}).get("split") or splits["report"]
    plan = make_plan(
        Sizes.of(settings),
        dict(ready.split_counts),
        mode=experiment.get("mode", "optimize"),
        optimize_split=splits["optimize"],
        accept_split=splits["accept"],
        report_split=splits["report"],
    )
    config = {
        "mode": experiment.get("mode", "optimize"),
        "prompt_id": found["prompt_id"],
        "prompt_version": found["version"],
        "system_prompt": found["system_prompt"],
        "output_prompt": found["output_prompt"],
        "dataset_id": dataset["dataset_id"],
        "dataset_version": ready.version,
        "splits": splits,
        "target_model": experiment["target_model"],
        "optimizer_model": experiment["optimizer_model"],
        "metric": experiment["metric"],
        "secondary_metrics": experiment.get("secondary_metrics") or [],
        "optimizer": settings,
        "promote_label": experiment.get("promote_label"),
        "regression": experiment.get("regression"),
        "temperature": experiment.get("temperature", 0.0),
        "max_tokens": experiment.get("max_tokens", 512),
    }
    return config, plan


def _plan_dict(plan: Any) -> dict[str, Any]:
    return {
        "iterations": plan.iterations,
        "candidates": plan.candidates,
        "rungs": [{"candidates": r.candidates, "rows": r.rows} for r in plan.rungs],
        "survivors": plan.survivors,
        "validation_rows": plan.validation_rows,
        "test_rows": plan.test_rows,
        "baseline_train_rows": plan.baseline_train_rows,
        "mode": plan.mode,
        "validation_look": plan.validation_look,
    }


def start_run(
    *,
    principal: Principal,
    experiment_id: str,
    budget: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    slot: datetime | None = None,
) -> dict[str, Any]:
    """Start a run (202), answered as `run_view.run_dict`; a replay answers the same run.

    A replay: the same Idempotency-Key, or the same scheduled slot. `budget`: this run's budget,
    instead of the experiment's.
    """
    from google.api_core import exceptions as gexc

    tenant = principal.tenant
    ref, snapshot = _experiment(tenant, experiment_id)
    experiment = snapshot.to_dict() or {}
    if slot is not None:
        run_id = paths.scheduled_run_id(experiment_id, slot)
    elif idempotency_key is not None:
        run_id = paths.derived_id("run_", tenant, experiment_id, idempotency_key)
    else:
        run_id = "run_" + secrets.token_hex(10)
    run_ref = paths.run_ref(tenant, experiment_id, run_id)
    existing = run_ref.get()
    if existing.exists:
        return run_view.run_dict(existing)
    active = experiment.get("active_run_id")
    if active and active != run_id:
        current = paths.run_ref(tenant, experiment_id, active).get()
        if current.exists and (current.to_dict() or {}).get("status") in ACTIVE_RUN_STATUSES:
            raise Conflict(
                f"experiment {experiment_id} already has an active run ({active}); wait for it or cancel it",
                code="run_active",
                run_id=active,
            )
    if _count_active(tenant) >= max_active_runs():
        raise TooManyRuns(
            f"at most {max_active_runs()} experiment runs may be active at once; wait for one or cancel one",
            retry_after_s=60,
            limit=max_active_runs(),
        )
    budget = dict(budget if budget is not None else experiment.get("budget") or {})
    _admit_spend(tenant, experiment, budget)
    config, plan = _pin(principal, experiment)
    stamp = datetime.now(UTC)
    doc = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tenant": tenant,
        "status": "queued",
        "trigger": "schedule" if slot is not None else "manual",
        "scheduled_for": slot,
        "step": "queued",
        "progress": 0.0,
        "reason": None,
        "usage": {},
        "budget": budget,
        "plan": _plan_dict(plan),
        "config": config,
        "state": {"phase": "start", "seq": 0},
        "created_at": stamp,
        "updated_at": stamp,
        "finished_at": None,
        "created_by": principal.subject,
    }
    # One batch: the experiment names its active run (conditional on it being unchanged, so of
    # concurrent starts one wins), the run is created, and its first step message is recorded in
    # the outbox, so a crash anywhere leaves either nothing or a run that will be advanced.
    message = step_message(tenant, experiment_id, run_id)
    batch = ref._client.batch()
    batch.update(
        ref,
        {
            "active_run_id": run_id,
            "last_run_id": run_id,
            "last_run_status": "queued",
            "runs": int(experiment.get("runs") or 0) + 1,
            "updated_at": stamp,
        },
        option=ref._client.write_option(last_update_time=snapshot.update_time),
    )
    batch.create(run_ref, doc)
    outbox.record(batch, message)
    try:
        batch.commit()
    except (gexc.AlreadyExists, gexc.Conflict):
        found = run_ref.get()
        if found.exists:
            return run_view.run_dict(found)
        raise Conflict(
            f"experiment {experiment_id} changed while starting; retry", code="experiment_busy"
        ) from None
    except (gexc.FailedPrecondition, gexc.Aborted):
        raise Conflict(
            f"experiment {experiment_id} changed while starting; retry", code="experiment_busy"
        ) from None
    outbox.deliver([message])
    log.info("run %s of %s queued", run_id, experiment_id, extra={"fields": {"run_id": run_id}})
    return run_view.run_dict(run_ref.get())


def _admit_spend(tenant: str, experiment: dict[str, Any], budget: dict[str, Any]) -> None:
    """402 when the run's upper-bound cost (its estimate, or its budget if lower) passes the cap."""
    from promptopt.spend import caps

    upper = float((experiment.get("estimate") or {}).get("cost_usd") or 0.0)
    if budget.get("max_cost_usd") is not None:
        upper = min(upper, float(budget["max_cost_usd"]))
    if upper > 0:
        caps.admit(tenant, upper, "this experiment run")


def step_message(tenant: str, experiment_id: str, run_id: str) -> outbox.Message:
    """The message that starts a run's first step (one per run: its key is the run)."""
    return outbox.Message(
        STEP_TOPIC,
        f"{tenant}/{experiment_id}/{run_id}/start",
        {"tenant": tenant, "experiment_id": experiment_id, "run_id": run_id},
    )


# OptimizerSettings' fields (tests/unit/test_views.py checks them against the model): settings
# stored with exactly these were validated and completed when the experiment was written.
OPTIMIZER_FIELDS = frozenset(
    {
        "strategy",
        "parents",
        "max_iterations",
        "candidates_per_iteration",
        "minibatch_size",
        "validation_size",
        "test_size",
        "patience",
        "min_improvement",
        "max_demos",
        "seed",
    }
)


def stored_settings(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The experiment's optimizer settings, complete: as stored, or completed by the model."""
    if set(stored) == OPTIMIZER_FIELDS:
        return dict(stored)
    from promptopt.experiments.models import OptimizerSettings

    return OptimizerSettings.model_validate(stored).model_dump()
