"""Runs of an experiment: start (idempotent), cancel, read, list, and the per-iteration metrics view."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from promptopt import outbox
from promptopt.errors import ApiError, Conflict, NotFound
from promptopt.experiments import engine, paths
from promptopt.experiments.models import (
    ACTIVE_RUN_STATUSES,
    CandidateView,
    IterationView,
    MetricsQuery,
    RunEvent,
    RunMetrics,
    RunPage,
    RunStart,
    RunUsage,
    RunView,
    ScoreCI,
)
from promptopt.http.models import PageQuery

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


def _experiment(tenant: str, experiment_id: str) -> tuple[Any, Any]:
    if not paths.EXPERIMENT_ID_RE.fullmatch(experiment_id):
        raise NotFound(f"experiment {experiment_id[:40]} not found", code="experiment_not_found")
    ref = paths.experiment_ref(tenant, experiment_id)
    snapshot = ref.get()
    if not snapshot.exists or (snapshot.to_dict() or {}).get("deleting"):  # a delete under way: gone
        raise NotFound(f"experiment {experiment_id} not found", code="experiment_not_found")
    return ref, snapshot


def _run_snapshot(tenant: str, experiment_id: str, run_id: str) -> Any:
    if not paths.RUN_ID_RE.fullmatch(run_id):
        raise NotFound(f"run {run_id[:40]} not found", code="run_not_found")
    snapshot = paths.run_ref(tenant, experiment_id, run_id).get()
    if not snapshot.exists:
        raise NotFound(f"run {run_id} not found", code="run_not_found")
    return snapshot


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
    from promptopt.experiments.models import OptimizerSettings
    from promptopt.experiments.plan import make_plan
    from promptopt.prompts import service as prompts
    from promptopt.prompts.models import PromptGetQuery

    selector = experiment["prompt"]
    label = selector.get("label")
    if experiment.get("mode") == "regression":
        label = (experiment.get("regression") or {}).get("label") or label
    found = prompts.get_prompt(
        principal=principal,
        prompt_id=selector["prompt_id"],
        query=PromptGetQuery(version=None if label else selector.get("version"), label=label),
    )
    dataset = experiment["dataset"]
    ready = resolve_version(
        tenant=principal.tenant, dataset_id=dataset["dataset_id"], version=dataset.get("version")
    )
    settings = OptimizerSettings.model_validate(experiment["optimizer"])
    splits = {
        "optimize": dataset.get("optimize_split", "train"),
        "accept": dataset.get("accept_split", "validation"),
        "report": dataset.get("report_split", "test"),
    }
    if experiment.get("mode") == "regression":
        splits["report"] = (experiment.get("regression") or {}).get("split") or splits["report"]
    plan = make_plan(
        settings,
        dict(ready.split_counts),
        mode=experiment.get("mode", "optimize"),
        optimize_split=splits["optimize"],
        accept_split=splits["accept"],
        report_split=splits["report"],
    )
    config = {
        "mode": experiment.get("mode", "optimize"),
        "prompt_id": found.prompt_id,
        "prompt_version": found.version,
        "system_prompt": found.system_prompt,
        "output_prompt": found.output_prompt,
        "dataset_id": dataset["dataset_id"],
        "dataset_version": ready.version,
        "splits": splits,
        "target_model": experiment["target_model"],
        "optimizer_model": experiment["optimizer_model"],
        "metric": experiment["metric"],
        "secondary_metrics": experiment.get("secondary_metrics") or [],
        "optimizer": settings.model_dump(),
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
    body: RunStart | None = None,
    idempotency_key: str | None = None,
    slot: datetime | None = None,
) -> RunView:
    """Start a run (202); a replay (same key, or the same scheduled slot) returns the same run."""
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
        return view(existing)
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
    budget = dict(experiment.get("budget") or {})
    if body is not None and body.budget is not None:
        budget = body.budget.model_dump()
    _admit_spend(tenant, experiment, budget)
    config, plan = _pin(principal, experiment)
    stamp = engine.now()
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
            return view(found)
        raise Conflict(
            f"experiment {experiment_id} changed while starting; retry", code="experiment_busy"
        ) from None
    except (gexc.FailedPrecondition, gexc.Aborted):
        raise Conflict(
            f"experiment {experiment_id} changed while starting; retry", code="experiment_busy"
        ) from None
    outbox.deliver([message])
    log.info("run %s of %s queued", run_id, experiment_id, extra={"fields": {"run_id": run_id}})
    return view(run_ref.get())


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


def cancel_run(*, principal: Principal, experiment_id: str, run_id: str) -> RunView:
    """Stop a run now: no new work is dispatched and its unfinished jobs are cancelled."""
    from google.api_core import exceptions as gexc

    _experiment(principal.tenant, experiment_id)
    for _ in range(5):
        snapshot = _run_snapshot(principal.tenant, experiment_id, run_id)
        data = snapshot.to_dict() or {}
        if data.get("status") == "cancelled":
            return view(snapshot)
        if data.get("status") not in ACTIVE_RUN_STATUSES:
            raise Conflict(
                f"run {run_id} is {data.get('status')}; only queued or running runs can be cancelled",
                code="run_not_cancellable",
                run_status=data.get("status"),
            )
        stamp = engine.now()
        seq = int((data.get("state") or {}).get("seq", 0)) + 1
        batch = snapshot.reference._client.batch()
        batch.update(
            snapshot.reference,
            {
                "status": "cancelled",
                "reason": f"cancelled by {principal.subject}",
                "step": "finished",
                "finished_at": stamp,
                "updated_at": stamp,
                "state.seq": seq,
            },
            option=snapshot.reference._client.write_option(last_update_time=snapshot.update_time),
        )
        batch.set(
            paths.events(snapshot.reference).document(f"{seq:06d}"),
            {"at": stamp, "kind": "cancelled", "message": f"cancelled by {principal.subject}"},
        )
        batch.set(
            paths.experiment_ref(principal.tenant, experiment_id),
            {"active_run_id": None, "last_run_status": "cancelled", "updated_at": stamp},
            merge=True,
        )
        try:
            batch.commit()
        except (gexc.FailedPrecondition, gexc.Aborted, gexc.Conflict):
            continue
        from promptopt.experiments import jobs as run_jobs

        run_jobs.cancel(principal.tenant, experiment_id, list((data.get("state") or {}).get("waiting") or {}))
        return view(paths.run_ref(principal.tenant, experiment_id, run_id).get())
    raise Conflict(f"run {run_id} is changing; retry", code="run_busy")


def get_run(*, principal: Principal, experiment_id: str, run_id: str) -> RunView:
    """One run with its recent events."""
    _experiment(principal.tenant, experiment_id)
    return view(_run_snapshot(principal.tenant, experiment_id, run_id), events=True)


def list_runs(*, principal: Principal, experiment_id: str, query: PageQuery) -> RunPage:
    """The experiment's runs, newest first."""
    from google.cloud.firestore import Query

    from promptopt.store.pagination import decode_token, encode_token, page_size

    _experiment(principal.tenant, experiment_id)
    scope = {"experiment": experiment_id}
    cursor = decode_token(query.page_token, scope, _cursor, tenant=principal.tenant)
    size = page_size(query.page_size)
    q: Any = paths.runs(principal.tenant, experiment_id).order_by("created_at", direction=Query.DESCENDING)
    q = q.order_by("run_id", direction=Query.DESCENDING)
    if cursor is not None:
        q = q.start_after({"created_at": cursor[0], "run_id": cursor[1]})
    snapshots = list(q.limit(size + 1).stream())
    items = [view(s) for s in snapshots[:size]]
    token = None
    if len(snapshots) > size:
        token = encode_token(
            [items[-1].created_at.isoformat(), items[-1].run_id], scope, tenant=principal.tenant
        )
    return RunPage(items=items, next_page_token=token)


def _cursor(values: list[Any]) -> tuple[datetime, str]:
    created, run_id = values
    if not isinstance(created, str) or not isinstance(run_id, str) or not paths.RUN_ID_RE.fullmatch(run_id):
        raise ValueError("malformed cursor")
    return datetime.fromisoformat(created), run_id


def _score(value: Any) -> ScoreCI | None:
    if not isinstance(value, dict) or value.get("mean") is None:
        return None
    mean = float(value["mean"])
    low, high = value.get("ci_low"), value.get("ci_high")
    return ScoreCI(
        mean=mean,
        ci_low=mean if low is None else float(low),
        ci_high=mean if high is None else float(high),
        n=int(value.get("n") or 0),
    )


def _usage(value: dict[str, Any] | None) -> RunUsage:
    value = value or {}
    return RunUsage(
        task_calls=int(value.get("task_calls", 0)),
        cache_hits=int(value.get("cache_hits", 0)),
        optimizer_calls=int(value.get("optimizer_calls", 0)),
        judge_calls=int(value.get("judge_calls", 0)),
        input_tokens=int(value.get("input_tokens", 0)),
        output_tokens=int(value.get("output_tokens", 0)),
        cost_usd=float(value.get("cost_usd", 0.0)),
    )


def view(snapshot: Any, *, events: bool = False) -> RunView:
    """A run document as the API shows it."""
    data = snapshot.to_dict() or {}
    shown: list[RunEvent] = []
    state = data.get("state") or {}
    if events:  # the newest events, by their sequence numbers (document ids sort in order)
        from google.cloud.firestore_v1.base_query import FieldFilter

        collection = paths.events(snapshot.reference)
        first = max(1, int(state.get("seq", 0)) - engine.MAX_EVENTS_SHOWN + 1)
        query = collection.where(filter=FieldFilter("__name__", ">=", collection.document(f"{first:06d}")))
        shown = [RunEvent.model_validate(e.to_dict() or {}) for e in query.stream()]
    return RunView(
        run_id=data["run_id"],
        experiment_id=data["experiment_id"],
        status=data["status"],
        trigger=data.get("trigger", "manual"),
        scheduled_for=data.get("scheduled_for"),
        step=str(data.get("step") or data["status"]),
        iteration=int(state.get("iteration", 0)),
        progress=float(data.get("progress") or 0.0),
        reason=data.get("reason"),
        usage=_usage(data.get("usage")),
        baseline=_score(data.get("baseline")),
        best=_score(data.get("best")),
        best_version=data.get("best_version"),
        lift=_score(data.get("lift")),
        events=shown,
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        finished_at=data.get("finished_at"),
    )


def metrics(*, principal: Principal, experiment_id: str, query: MetricsQuery) -> RunMetrics:
    """Iteration by iteration: candidates, incumbent, usage; and the run's held-out result."""
    _, snapshot = _experiment(principal.tenant, experiment_id)
    experiment = snapshot.to_dict() or {}
    run_id = query.run_id or experiment.get("active_run_id") or experiment.get("last_run_id")
    simulated = str(experiment.get("target_model", "")).startswith("sim:") or str(
        experiment.get("optimizer_model", "")
    ).startswith("sim:")
    if not run_id:
        return RunMetrics(
            experiment_id=experiment_id, run_id=None, status=None, iterations=[], simulated=simulated
        )
    run = _run_snapshot(principal.tenant, experiment_id, run_id)
    data = run.to_dict() or {}
    state = data.get("state") or {}
    cands: dict[str, Any] = state.get("cands") or {}
    iterations: dict[int, list[CandidateView]] = {}
    for cid in sorted(cands):
        entry = cands[cid]
        it = int(entry.get("iteration", 0))
        iterations.setdefault(it, []).append(
            CandidateView(
                candidate_id=cid,
                iteration=it,
                strategy=str(entry.get("strategy") or ""),
                parent=entry.get("parent"),
                prompt_version=entry.get("version"),
                rung_scores=[float(x) for x in entry.get("rung_means") or []],
                validation=_score(entry.get("accept")),
                secondary={k: float(v) for k, v in (entry.get("secondary") or {}).items()},
                tokens_per_row=entry.get("tokens_per_row"),
                accepted=bool(entry.get("accepted")) or cid == engine.BASELINE,
                verdict=str(entry.get("verdict") or entry.get("status") or ""),
            )
        )
    incumbent = state.get("incumbent", engine.BASELINE)
    views = [
        IterationView(
            iteration=it,
            candidates=items,
            incumbent=incumbent,
            incumbent_score=_score((cands.get(incumbent) or {}).get("accept")),
            usage=RunUsage(),
        )
        for it, items in sorted(iterations.items())
    ]
    return RunMetrics(
        experiment_id=experiment_id,
        run_id=run_id,
        status=data.get("status"),
        iterations=views,
        baseline_test=_score(data.get("baseline_test")),
        best_test=_score(data.get("best_test")),
        paired_lift=_score(data.get("lift")),
        best_version=data.get("best_version") or (cands.get(incumbent) or {}).get("version"),
        usage=_usage(data.get("usage")),
        simulated=simulated,
    )
