"""Runs of an experiment as models: start (see `start`), read, list, and the per-iteration metrics.

The functions answer plain dicts (`start`, `run_view`); these wrap them for callers that go on
with a model (the scheduler's tick, the cold-start bench's seeding).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from promptopt.experiments import run_view, start
from promptopt.experiments.models import MetricsQuery, RunStart
from promptopt.experiments.view_models import RunMetrics, RunPage, RunUsage, RunView, ScoreCI
from promptopt.http.models import PageQuery

if TYPE_CHECKING:
    from promptopt.auth import Principal

log = logging.getLogger(__name__)


def start_run(
    *,
    principal: Principal,
    experiment_id: str,
    body: RunStart | None = None,
    idempotency_key: str | None = None,
    slot: datetime | None = None,
) -> RunView:
    """`start.start_run` as a model (for callers that go on with it)."""
    budget = body.budget.model_dump() if body is not None and body.budget is not None else None
    found = start.start_run(
        principal=principal,
        experiment_id=experiment_id,
        budget=budget,
        idempotency_key=idempotency_key,
        slot=slot,
    )
    return RunView.model_validate(found)


def _score(value: Any) -> ScoreCI | None:
    found = run_view._score(value)
    return None if found is None else ScoreCI.model_validate(found)


def _usage(value: dict[str, Any] | None) -> RunUsage:
    return RunUsage.model_validate(run_view._usage(value))


def view(snapshot: Any, *, events: bool = False) -> RunView:
    """A run document as the API shows it, as a model (for callers that go on with it)."""
    return RunView.model_validate(run_view.run_dict(snapshot, events=events))


def list_runs(*, principal: Principal, experiment_id: str, query: PageQuery) -> RunPage:
    """The experiment's runs, newest first (see `run_view.list_runs`), as a model."""
    return RunPage.model_validate(
        run_view.list_runs(principal=principal, experiment_id=experiment_id, query=query)
    )


def metrics(*, principal: Principal, experiment_id: str, query: MetricsQuery) -> RunMetrics:
    """Iteration by iteration (see `run_view.metrics`), as a model."""
    found = run_view.metrics(principal=principal, experiment_id=experiment_id, query=query)
    return RunMetrics.model_validate(found)
