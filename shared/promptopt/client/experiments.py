"""`client.experiments`: optimization and regression experiments, their runs and metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from promptopt.client._base import Resource, body_of, parse
from promptopt.client.errors import JobFailed
from promptopt.client.http import clean, segment
from promptopt.client.paging import pages
from promptopt.client.waiting import wait_until
from promptopt.experiments.models import (
    FINAL_RUN_STATUSES,
    Estimate,
    ExperimentCreate,
    ExperimentUpdate,
    RunStart,
)
from promptopt.experiments.view_models import (
    ExperimentCreated,
    ExperimentPage,
    ExperimentView,
    RunMetrics,
    RunPage,
    RunView,
)

_UNSET: Any = object()


class Experiments(Resource):
    """The /api/v1/experiments endpoints."""

    def create(self, *, idempotency_key: str | None = None, **settings: Any) -> ExperimentCreated:
        """An experiment, with its estimate.

        The settings are the fields of `ExperimentCreate`: name, prompt, dataset, metric,
        optimizer, budget, schedule, mode, ...
        """
        body = body_of(ExperimentCreate, settings)
        reply = self._http.post("/experiments", body, idempotency_key=idempotency_key)
        return parse(ExperimentCreated, reply.body)

    def estimate(self, **settings: Any) -> Estimate:
        """The upper bounds of one run's calls, tokens and cost for these settings; stores nothing."""
        return parse(
            Estimate, self._http.post("/experiments/estimate", body_of(ExperimentCreate, settings)).body
        )

    def get(self, experiment_id: str) -> ExperimentView:
        """Settings, schedule, the active and the latest run."""
        return parse(ExperimentView, self._http.request("GET", f"/experiments/{segment(experiment_id)}").body)

    def list(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ExperimentPage:
        """One page of experiments, newest first (`status`: of the latest run)."""
        params = clean({"name": name, "status": status, "page_size": page_size, "page_token": page_token})
        return parse(ExperimentPage, self._http.request("GET", "/experiments", params=params).body)

    def iterate(
        self, *, name: str | None = None, status: str | None = None, page_size: int | None = None
    ) -> Iterator[ExperimentView]:
        """Every experiment, newest first."""

        def fetch(token: str | None) -> ExperimentPage:
            return self.list(name=name, status=status, page_size=page_size, page_token=token)

        for page in pages(fetch):
            yield from page.items

    def update(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        promote_label: str | None = None,
        schedule: Mapping[str, Any] | None = _UNSET,
        schedule_enabled: bool | None = None,
    ) -> ExperimentView:
        """Rename, describe, set `promote_label`, change the schedule (None clears it) or pause it."""
        fields = {
            "name": name,
            "description": description,
            "promote_label": promote_label,
            "schedule_enabled": schedule_enabled,
        }
        body = body_of(ExperimentUpdate, {**fields, "schedule": None if schedule is _UNSET else schedule})
        if schedule is None:
            body["schedule"] = None  # clears the schedule (None elsewhere means "left out")
        reply = self._http.request("PATCH", f"/experiments/{segment(experiment_id)}", json=body)
        return parse(ExperimentView, reply.body)

    def delete(self, experiment_id: str) -> None:
        """Remove it with its runs (admin; Conflict while a run is active)."""
        self._http.request("DELETE", f"/experiments/{segment(experiment_id)}")

    def start(
        self,
        experiment_id: str,
        *,
        budget: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> RunView:
        """Start a run (the same `idempotency_key` returns the same run)."""
        body = body_of(RunStart, {"budget": dict(budget) if budget else None})
        path = f"/experiments/{segment(experiment_id)}/start"
        return parse(RunView, self._http.post(path, body, idempotency_key=idempotency_key).body)

    def runs(
        self, experiment_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> RunPage:
        """One page of runs, newest first."""
        params = clean({"page_size": page_size, "page_token": page_token})
        reply = self._http.request("GET", f"/experiments/{segment(experiment_id)}/runs", params=params)
        return parse(RunPage, reply.body)

    def iterate_runs(self, experiment_id: str, *, page_size: int | None = None) -> Iterator[RunView]:
        """Every run, newest first."""
        for page in pages(lambda token: self.runs(experiment_id, page_size=page_size, page_token=token)):
            yield from page.items

    def get_run(self, experiment_id: str, run_id: str) -> RunView:
        """A run: status, step, progress, usage, scores, lift and recent events."""
        path = f"/experiments/{segment(experiment_id)}/runs/{segment(run_id)}"
        return parse(RunView, self._http.request("GET", path).body)

    def cancel_run(self, experiment_id: str, run_id: str) -> RunView:
        """Stop a run now (results kept)."""
        path = f"/experiments/{segment(experiment_id)}/runs/{segment(run_id)}/cancel"
        return parse(RunView, self._http.post(path).body)

    def metrics(self, experiment_id: str, *, run_id: str | None = None) -> RunMetrics:
        """Per iteration every candidate, and the held-out result (default: the active or latest run)."""
        path = f"/experiments/{segment(experiment_id)}/metrics"
        return parse(RunMetrics, self._http.request("GET", path, params=clean({"run_id": run_id})).body)

    def wait_run(
        self,
        experiment_id: str,
        run_id: str,
        *,
        timeout_s: float | None = 3600.0,
        on_progress: Callable[[RunView], None] | None = None,
        raise_on_failure: bool = True,
    ) -> RunView:
        """Poll until the run ends (JobFailed for a failed run, unless told not to)."""
        run = wait_until(
            lambda: self.get_run(experiment_id, run_id),
            settled=lambda r: r.status in FINAL_RUN_STATUSES,
            what=f"run {run_id}",
            timeout_s=timeout_s,
            on_progress=on_progress,
        )
        if raise_on_failure and run.status == "failed":
            raise JobFailed(f"run {run_id}", run.reason or "no reason given", run)
        return run
