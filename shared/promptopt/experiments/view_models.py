"""Experiment schemas of what the API answers about experiments and runs.

Apart from promptopt.experiments.models (what a user hands over) so that the functions that create,
update or estimate an experiment do not build them at cold start; the reads answer dict views
tied to these by tests/unit/test_views.py, and the OpenAPI document and the Python client use them.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from promptopt.experiments.models import Estimate, Mode, RunStatus
from promptopt.http.models import ResponseModel


class ExperimentView(ResponseModel):
    """An experiment: its settings and what its runs did."""

    experiment_id: str
    name: str
    description: str
    mode: Mode
    prompt: dict[str, Any]
    dataset: dict[str, Any]
    target_model: str
    optimizer_model: str
    metric: dict[str, Any]
    secondary_metrics: list[dict[str, Any]]
    optimizer: dict[str, Any]
    budget: dict[str, Any]
    promote_label: str | None
    schedule: dict[str, Any] | None
    regression: dict[str, Any] | None
    temperature: float
    max_tokens: int
    active_run_id: str | None = None
    last_run_id: str | None = None
    last_run_status: str | None = None
    runs: int = 0
    next_run_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    created_by: str


class ExperimentCreated(ExperimentView):
    """201 from POST /api/v1/experiments: the experiment and its estimate."""

    estimate: Estimate


class ExperimentPage(ResponseModel):
    """One page of experiments, newest first."""

    items: list[ExperimentView]
    next_page_token: str | None = None


class RunUsage(ResponseModel):
    """What a run spent. Rows answered from the response cache are counted apart: they cost nothing."""

    task_calls: int = Field(0, description="model calls its evaluation jobs made")
    cache_hits: int = Field(0, description="rows answered from the response cache (no call, no cost)")
    optimizer_calls: int = 0
    judge_calls: int = Field(
        0, description="calls its evaluation jobs made to grade rows (llm_judge, embedding_similarity)"
    )
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class RunEvent(ResponseModel):
    """Something a run did or met (step changes, retries, sweeps, rejected optimizer replies)."""

    at: datetime
    kind: str
    message: str


class ScoreCI(ResponseModel):
    """A mean over rows with its 95% confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    n: int


class RunView(ResponseModel):
    """One run of an experiment."""

    run_id: str
    experiment_id: str
    status: RunStatus
    trigger: Literal["manual", "schedule"] = "manual"
    scheduled_for: datetime | None = None
    step: str = Field(description="what the run is doing now, e.g. screening rung 1 of iteration 2")
    iteration: int = 0
    progress: float = Field(0.0, description="0..1, by planned steps")
    reason: str | None = Field(None, description="why the run ended as it did")
    usage: RunUsage = Field(default_factory=RunUsage)
    baseline: ScoreCI | None = None
    best: ScoreCI | None = None
    best_version: int | None = None
    lift: ScoreCI | None = None
    events: list[RunEvent] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class RunPage(ResponseModel):  # Page[RunView], spelt out: parametrizing a generic builds its schema at import
    """One page of runs, newest first."""

    items: list[RunView]
    next_page_token: str | None = None


class CandidateView(ResponseModel):
    """One candidate of one iteration."""

    candidate_id: str
    iteration: int
    strategy: str
    parent: str | None
    prompt_version: int | None = Field(None, description="set when it reached validation")
    rung_scores: list[float] = Field(default_factory=list)
    validation: ScoreCI | None = None
    secondary: dict[str, float] = Field(default_factory=dict)
    tokens_per_row: float | None = None
    accepted: bool = False
    verdict: str = Field("", description="accepted, or why not")


class IterationView(ResponseModel):
    """One iteration: its candidates, the incumbent after it, and what it cost."""

    iteration: int
    candidates: list[CandidateView]
    incumbent: str
    incumbent_score: ScoreCI | None
    usage: RunUsage
    duration_s: float | None = None


class RunMetrics(ResponseModel):
    """GET /api/v1/experiments/{id}/metrics: the latest (or a named) run, iteration by iteration."""

    experiment_id: str
    run_id: str | None
    status: RunStatus | None
    iterations: list[IterationView]
    baseline_test: ScoreCI | None = None
    best_test: ScoreCI | None = None
    paired_lift: ScoreCI | None = Field(None, description="best minus baseline on the same test rows")
    best_version: int | None = None
    usage: RunUsage = Field(default_factory=RunUsage)
    simulated: bool = Field(False, description="true when the target or optimizer model is the simulator")
