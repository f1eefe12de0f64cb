"""Experiment schemas: what a user hands over and what the API answers.

A user hands over a prompt, a dataset, a metric, optimizer settings and a budget; the API answers
with the experiment, its estimate, its runs and their metrics.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from promptopt.evaluation.models import MetricRequest
from promptopt.http.models import PageQuery, RequestModel, ResponseModel
from promptopt.prompts.fields import Label, Name
from promptopt.store.sorting import SORT_DESCRIPTION, Sort

Split = Literal["train", "validation", "test"]
Strategy = Literal["auto", "reflective", "history", "fewshot", "random"]
Parents = Literal["pareto", "incumbent"]
Mode = Literal["optimize", "regression"]
RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "budget_exhausted", "regressed"]
ACTIVE_RUN_STATUSES: tuple[str, ...] = ("queued", "running")
FINAL_RUN_STATUSES: tuple[str, ...] = ("completed", "failed", "cancelled", "budget_exhausted", "regressed")
ModelIdText = Annotated[
    str, StringConstraints(min_length=3, max_length=128, pattern=r"^[a-z]+:[A-Za-z0-9._\-/@]+$")
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_SECONDARY_METRICS = 4


class PromptSelector(RequestModel):
    """The prompt an experiment starts from: a stored prompt's version or label (latest if neither)."""

    prompt_id: Id
    version: int | None = Field(None, ge=1, le=1_000_000)
    label: Label | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> Self:
        if self.version is not None and self.label is not None:
            raise ValueError("give version or label, not both")
        return self


class DatasetSelector(RequestModel):
    """The dataset version, and the splits to optimize on, accept on and report on."""

    dataset_id: Id
    version: int | None = Field(None, ge=1, le=1_000_000, description="default: the newest ready version")
    optimize_split: Split = Field("train", description="failures shown to the optimizer and screening rows")
    accept_split: Split = Field("validation", description="rows a candidate must improve on to be accepted")
    report_split: Split = Field(
        "test", description="held out: never shown to the optimizer nor used to accept"
    )

    @model_validator(mode="after")
    def _report_split_is_held_out(self) -> Self:
        if self.report_split in (self.optimize_split, self.accept_split):
            raise ValueError("report_split must differ from optimize_split and accept_split (it is held out)")
        return self


class OptimizerSettings(RequestModel):
    """How the search runs. Defaults suit a first run; every count is an upper bound."""

    strategy: Strategy = Field(
        "auto", description="auto spends the budget across strategies by observed gain"
    )
    parents: Parents = Field(
        "pareto",
        description="parents from GEPA's Pareto frontier over validation rows, or the incumbent alone",
    )
    max_iterations: int = Field(3, ge=1, le=50)
    candidates_per_iteration: int = Field(4, ge=1, le=16)
    minibatch_size: int = Field(6, ge=2, le=200, description="rows in the first screening rung")
    validation_size: int = Field(32, ge=5, le=2_000, description="cap on accept_split rows used")
    test_size: int = Field(100, ge=5, le=2_000, description="cap on report_split rows used")
    patience: int = Field(
        2, ge=1, le=50, description="iterations without an accepted candidate before stopping"
    )
    min_improvement: float = Field(
        0.0, ge=0.0, le=1.0, description="the paired CI's lower bound must be above this to accept"
    )
    max_demos: int = Field(3, ge=0, le=8, description="demonstrations a fewshot candidate may carry")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class RunBudget(RequestModel):
    """Hard limits for one run, optimizer calls included; checked before any work is dispatched."""

    max_calls: int | None = Field(None, ge=1, le=10_000_000)
    max_tokens: int | None = Field(None, ge=1, le=10_000_000_000)
    max_cost_usd: float | None = Field(None, gt=0, le=1_000_000)


class Schedule(RequestModel):
    """When scheduled runs start (cron with five fields, in `time_zone`)."""

    cron: Annotated[str, StringConstraints(min_length=9, max_length=120)]
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "Etc/UTC"
    enabled: bool = True


class RegressionSettings(RequestModel):
    """`mode: regression`: evaluate a label on a split and compare with the previous run (same rows)."""

    label: Label = "production"
    split: Split = "test"
    max_drop: float = Field(
        0.02, ge=0.0, le=1.0, description="a paired drop beyond this marks the run regressed"
    )


class ExperimentCreate(RequestModel):
    """POST /api/v1/experiments (and /estimate): everything a run needs, validated against what exists."""

    name: Name
    description: Annotated[str, StringConstraints(max_length=2_000)] = ""
    mode: Mode = "optimize"
    prompt: PromptSelector
    dataset: DatasetSelector
    target_model: ModelIdText | None = Field(None, description="default: the deployment's default model")
    optimizer_model: ModelIdText | None = Field(
        None, description="proposes rewrites; default: sim:optimizer locally, the default model when deployed"
    )
    metric: MetricRequest
    secondary_metrics: list[MetricRequest] = Field(default_factory=list, max_length=MAX_SECONDARY_METRICS)
    optimizer: OptimizerSettings = Field(default_factory=OptimizerSettings)
    budget: RunBudget = Field(default_factory=RunBudget)
    promote_label: Label | None = Field(
        None, description="the label the best version gets when a run ends with a real improvement"
    )
    schedule: Schedule | None = None
    regression: RegressionSettings | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1, le=65_536)

    @model_validator(mode="after")
    def _mode_settings(self) -> Self:
        if self.mode == "regression" and self.regression is None:
            self.regression = RegressionSettings()
        if self.mode == "optimize" and self.regression is not None:
            raise ValueError("regression settings apply to mode: regression only")
        names = [self.metric.name, *(m.name for m in self.secondary_metrics)]
        if len(set(names)) != len(names):
            raise ValueError("metric names must be distinct")
        return self


class ExperimentUpdate(RequestModel):
    """PATCH /api/v1/experiments/{id}: rename, describe, change or pause the schedule."""

    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2_000)] | None = None
    schedule: Schedule | None = None
    schedule_enabled: bool | None = Field(None, description="turn the schedule on or off, keeping it")
    promote_label: Label | None = None


class EstimateTerm(ResponseModel):
    """One term of the estimate's formula."""

    step: str = Field(description="e.g. baseline, screening rung 1, validation, test, optimizer, judge")
    calls: int
    formula: str = Field(description="how the calls were counted")


class Estimate(ResponseModel):
    """Upper bounds for one run: the run never exceeds them (it refuses work past its budget)."""

    task_calls: int
    optimizer_calls: int
    judge_calls: int = Field(
        0,
        description="calls grading rows (llm_judge's judge, embedding_similarity's embeddings): "
        "at most one per task call per model-graded metric",
    )
    input_tokens: int
    output_tokens: int
    cost_usd: float
    terms: list[EstimateTerm]
    within_budget: bool
    notes: list[str] = Field(default_factory=list)


class ExperimentListQuery(PageQuery):
    """GET /api/v1/experiments: newest first unless sorted otherwise (names sort regardless of case)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    status: RunStatus | None = Field(None, description="the status of the experiment's latest run")
    sort: Sort = Field("-created", description=SORT_DESCRIPTION)


class MetricsQuery(RequestModel):
    """GET /api/v1/experiments/{id}/metrics."""

    run_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class RunStart(RequestModel):
    """POST /api/v1/experiments/{id}/start (an empty body is fine)."""

    budget: RunBudget | None = Field(None, description="override the experiment's budget for this run")
