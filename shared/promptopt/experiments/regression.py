"""Regression runs: a labelled version on the report split, compared with the previous run's rows."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from promptopt.experiments import paths

if TYPE_CHECKING:
    from promptopt.experiments.engine import Run

log = logging.getLogger(__name__)
ALERTS = "experiment-alerts"


def _previous_scores(run: Run, n: int) -> tuple[str, list[float]] | None:
    from google.cloud.firestore import Query
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        paths.runs(run.tenant, run.experiment_id)
        .where(filter=FieldFilter("status", "in", ["completed", "regressed"]))
        .order_by("created_at", direction=Query.DESCENDING)
        .limit(10)
    )
    for snapshot in query.stream():
        data = snapshot.to_dict() or {}
        scores = data.get("report_scores") or []
        created, own = data.get("created_at"), run.data.get("created_at")
        earlier = created is not None and own is not None and created < own
        if snapshot.id != run.run_id and len(scores) == n and earlier:
            return snapshot.id, [float(s) for s in scores]
    return None


def compare(run: Run, scores: list[float]) -> tuple[str, str, dict[str, Any] | None]:
    """(status, reason, paired lift vs the previous run) for a finished regression evaluation."""
    from promptopt.experiments.selection import paired_lift

    settings = run.config.get("regression") or {}
    max_drop = float(settings.get("max_drop", 0.02))
    mean = sum(scores) / len(scores) if scores else 0.0
    previous = _previous_scores(run, len(scores))
    if previous is None:
        return "completed", f"first regression check: {mean:.3f} on {len(scores)} rows recorded", None
    prev_id, prev_scores = previous
    lift = paired_lift(scores, prev_scores, seed=int(run.config["optimizer"]["seed"]))
    shown = {"mean": lift.mean, "ci_low": lift.ci_low, "ci_high": lift.ci_high, "n": lift.n}
    if lift.mean < -max_drop and lift.ci_high < 0:
        return (
            "regressed",
            f"score dropped {lift.mean:+.3f} vs run {prev_id} "
            f"(95% CI {lift.ci_low:+.3f}..{lift.ci_high:+.3f}), beyond max_drop {max_drop}",
            shown,
        )
    return (
        "completed",
        f"{mean:.3f}; change {lift.mean:+.3f} vs run {prev_id} is within max_drop {max_drop}",
        shown,
    )


def alert(run: Run) -> None:
    """Publish the regression to the alerts topic users subscribe to."""
    from promptopt.batch import events

    events.publish(
        ALERTS,
        {
            "tenant": run.tenant,
            "experiment_id": run.experiment_id,
            "run_id": run.run_id,
            "status": "regressed",
            "reason": str(run.data.get("reason") or "")[:500],
        },
    )
