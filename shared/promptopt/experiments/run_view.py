"""Reading and cancelling one run, answered as plain dicts.

Apart from starting runs and the engine (experiments.runs, experiments.engine), so that
GET …/runs/{run_id} and its cancel load neither the engine nor pydantic on their cold start;
tests/unit/test_views.py checks `run_dict` against RunView.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.errors import Conflict, NotFound
from promptopt.experiments import paths

if TYPE_CHECKING:
    from promptopt.auth import Principal
    from promptopt.experiments.models import MetricsQuery
    from promptopt.http.models import PageQuery

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")  # experiments.models.ACTIVE_RUN_STATUSES
MAX_EVENTS_SHOWN = 50
BASELINE = "c000_00"  # experiments.engine.BASELINE: the base prompt's candidate id


def load_experiment(tenant: str, experiment_id: str) -> tuple[Any, Any]:
    """The experiment's reference and snapshot; 404 for unknown, malformed or deleting ones."""
    if not paths.EXPERIMENT_ID_RE.fullmatch(experiment_id):
        raise NotFound(f"experiment {experiment_id[:40]} not found", code="experiment_not_found")
    ref = paths.experiment_ref(tenant, experiment_id)
    snapshot = ref.get()
    if not snapshot.exists or (snapshot.to_dict() or {}).get("deleting"):  # a delete under way: gone
        raise NotFound(f"experiment {experiment_id} not found", code="experiment_not_found")
    return ref, snapshot


def load_run(tenant: str, experiment_id: str, run_id: str) -> Any:
    """The run's snapshot; 404 for unknown or malformed ids."""
    if not paths.RUN_ID_RE.fullmatch(run_id):
        raise NotFound(f"run {run_id[:40]} not found", code="run_not_found")
    snapshot = paths.run_ref(tenant, experiment_id, run_id).get()
    if not snapshot.exists:
        raise NotFound(f"run {run_id} not found", code="run_not_found")
    return snapshot


def _score(value: Any) -> dict[str, Any] | None:
    """A ScoreCI (None until the score exists)."""
    if not isinstance(value, dict) or value.get("mean") is None:
        return None
    mean = float(value["mean"])
    low, high = value.get("ci_low"), value.get("ci_high")
    return {
        "mean": mean,
        "ci_low": mean if low is None else float(low),
        "ci_high": mean if high is None else float(high),
        "n": int(value.get("n") or 0),
    }


def _usage(value: dict[str, Any] | None) -> dict[str, Any]:
    """A RunUsage."""
    value = value or {}
    return {
        "task_calls": int(value.get("task_calls", 0)),
        "cache_hits": int(value.get("cache_hits", 0)),
        "optimizer_calls": int(value.get("optimizer_calls", 0)),
        "judge_calls": int(value.get("judge_calls", 0)),
        "input_tokens": int(value.get("input_tokens", 0)),
        "output_tokens": int(value.get("output_tokens", 0)),
        "cost_usd": float(value.get("cost_usd", 0.0)),
    }


def _event(data: dict[str, Any]) -> dict[str, Any]:
    """A RunEvent."""
    return {"at": data["at"], "kind": str(data["kind"]), "message": str(data["message"])}


def run_dict(snapshot: Any, *, events: bool = False) -> dict[str, Any]:
    """A run document as the API shows it: a RunView's fields, as a plain dict."""
    data = snapshot.to_dict() or {}
    shown: list[dict[str, Any]] = []
    state = data.get("state") or {}
    if events:  # the newest events, by their sequence numbers (document ids sort in order)
        from google.cloud.firestore_v1.base_query import FieldFilter

        collection = paths.events(snapshot.reference)
        first = max(1, int(state.get("seq", 0)) - MAX_EVENTS_SHOWN + 1)
        query = collection.where(filter=FieldFilter("__name__", ">=", collection.document(f"{first:06d}")))
        shown = [_event(e.to_dict() or {}) for e in query.stream()]
    return {
        "run_id": data["run_id"],
        "experiment_id": data["experiment_id"],
        "status": data["status"],
        "trigger": data.get("trigger", "manual"),
        "scheduled_for": data.get("scheduled_for"),
        "step": str(data.get("step") or data["status"]),
        "iteration": int(state.get("iteration", 0)),
        "progress": float(data.get("progress") or 0.0),
        "reason": data.get("reason"),
        "usage": _usage(data.get("usage")),
        "baseline": _score(data.get("baseline")),
        "best": _score(data.get("best")),
        "best_version": data.get("best_version"),
        "lift": _score(data.get("lift")),
        "events": shown,
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "finished_at": data.get("finished_at"),
    }


def get_run(*, principal: Principal, experiment_id: str, run_id: str) -> dict[str, Any]:
    """One run with its recent events (a RunView, as a plain dict)."""
    load_experiment(principal.tenant, experiment_id)
    return run_dict(load_run(principal.tenant, experiment_id, run_id), events=True)


def cancel_run(*, principal: Principal, experiment_id: str, run_id: str) -> dict[str, Any]:
    """Stop a run now: no new work is dispatched and its unfinished jobs are cancelled.

    A RunView, as a plain dict. The run's state change, its event and the experiment's active-run
    slot are one conditional commit, so a cancel and a step's transition never both win.
    """
    from google.api_core import exceptions as gexc

    load_experiment(principal.tenant, experiment_id)
    for _ in range(5):
        snapshot = load_run(principal.tenant, experiment_id, run_id)
        data = snapshot.to_dict() or {}
        if data.get("status") == "cancelled":
            return run_dict(snapshot)
        if data.get("status") not in ACTIVE:
            raise Conflict(
                f"run {run_id} is {data.get('status')}; only queued or running runs can be cancelled",
                code="run_not_cancellable",
                run_status=data.get("status"),
            )
        stamp = datetime.now(UTC)
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
        waiting = list((data.get("state") or {}).get("waiting") or {})
        if waiting:  # the batch machinery loads only when there are jobs to stop
            from promptopt.experiments import jobs as run_jobs

            run_jobs.cancel(principal.tenant, experiment_id, waiting)
        return run_dict(paths.run_ref(principal.tenant, experiment_id, run_id).get())
    raise Conflict(f"run {run_id} is changing; retry", code="run_busy")


class PageDefaults(NamedTuple):
    """PageQuery with nothing given (tests/unit/test_views.py checks it against the model)."""

    page_size: int | None = None
    page_token: str | None = None


def list_runs(*, principal: Principal, experiment_id: str, query: PageQuery | PageDefaults) -> dict[str, Any]:
    """The experiment's runs, newest first (a RunPage, as a plain dict)."""
    from google.cloud.firestore import Query

    from promptopt.store.pagination import decode_token, encode_token, page_size

    load_experiment(principal.tenant, experiment_id)
    scope = {"experiment": experiment_id}
    cursor = decode_token(query.page_token, scope, _cursor, tenant=principal.tenant)
    size = page_size(query.page_size)
    q: Any = paths.runs(principal.tenant, experiment_id).order_by("created_at", direction=Query.DESCENDING)
    q = q.order_by("run_id", direction=Query.DESCENDING)
    if cursor is not None:
        q = q.start_after({"created_at": cursor[0], "run_id": cursor[1]})
    snapshots = list(q.limit(size + 1).stream())
    items = [run_dict(s) for s in snapshots[:size]]
    token = None
    if len(snapshots) > size:
        last = items[-1]
        token = encode_token([last["created_at"].isoformat(), last["run_id"]], scope, tenant=principal.tenant)
    return {"items": items, "next_page_token": token}


def _cursor(values: list[Any]) -> tuple[datetime, str]:
    created, run_id = values
    if not isinstance(created, str) or not isinstance(run_id, str) or not paths.RUN_ID_RE.fullmatch(run_id):
        raise ValueError("malformed cursor")
    return datetime.fromisoformat(created), run_id


class MetricsDefaults(NamedTuple):
    """MetricsQuery with nothing given: the latest run."""

    run_id: str | None = None


def _candidate(cid: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A CandidateView from the run state's entry."""
    tokens = entry.get("tokens_per_row")
    return {
        "candidate_id": cid,
        "iteration": int(entry.get("iteration", 0)),
        "strategy": str(entry.get("strategy") or ""),
        "parent": entry.get("parent"),
        "prompt_version": entry.get("version"),
        "rung_scores": [float(x) for x in entry.get("rung_means") or []],
        "validation": _score(entry.get("accept")),
        "secondary": {str(k): float(v) for k, v in (entry.get("secondary") or {}).items()},
        "tokens_per_row": None if tokens is None else float(tokens),
        "accepted": bool(entry.get("accepted")) or cid == BASELINE,
        "verdict": str(entry.get("verdict") or entry.get("status") or ""),
    }


def metrics(
    *, principal: Principal, experiment_id: str, query: MetricsQuery | MetricsDefaults
) -> dict[str, Any]:
    """Iteration by iteration: candidates, incumbent, usage; and the run's held-out result.

    A RunMetrics, as a plain dict.
    """
    _, snapshot = load_experiment(principal.tenant, experiment_id)
    experiment = snapshot.to_dict() or {}
    run_id = query.run_id or experiment.get("active_run_id") or experiment.get("last_run_id")
    run = (load_run(principal.tenant, experiment_id, run_id).to_dict() or {}) if run_id else None
    return metrics_dict(experiment_id, experiment, run_id, run)


def metrics_dict(
    experiment_id: str, experiment: dict[str, Any], run_id: str | None, data: dict[str, Any] | None
) -> dict[str, Any]:
    """A RunMetrics from the experiment's and the run's documents (None: no run yet)."""
    simulated = str(experiment.get("target_model", "")).startswith("sim:") or str(
        experiment.get("optimizer_model", "")
    ).startswith("sim:")
    if not run_id or data is None:
        return {
            "experiment_id": experiment_id,
            "run_id": None,
            "status": None,
            "iterations": [],
            "baseline_test": None,
            "best_test": None,
            "paired_lift": None,
            "best_version": None,
            "usage": _usage(None),
            "simulated": simulated,
        }
    state = data.get("state") or {}
    cands: dict[str, Any] = state.get("cands") or {}
    iterations: dict[int, list[dict[str, Any]]] = {}
    for cid in sorted(cands):
        candidate = _candidate(cid, cands[cid])
        iterations.setdefault(candidate["iteration"], []).append(candidate)
    incumbent = state.get("incumbent", BASELINE)
    views = [
        {
            "iteration": it,
            "candidates": items,
            "incumbent": incumbent,
            "incumbent_score": _score((cands.get(incumbent) or {}).get("accept")),
            "usage": _usage(None),
            "duration_s": None,
        }
        for it, items in sorted(iterations.items())
    ]
    return {
        "experiment_id": experiment_id,
        "run_id": run_id,
        "status": data.get("status"),
        "iterations": views,
        "baseline_test": _score(data.get("baseline_test")),
        "best_test": _score(data.get("best_test")),
        "paired_lift": _score(data.get("lift")),
        "best_version": data.get("best_version") or (cands.get(incumbent) or {}).get("version"),
        "usage": _usage(data.get("usage")),
        "simulated": simulated,
    }
