"""Evaluation schemas: synchronous, size-capped scoring of predictions against references."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from promptopt.evaluation import METRICS
from promptopt.models.common import RequestModel, ResponseModel

MAX_ROWS = 5_000
MAX_TEXT_CHARS = 20_000
MAX_METRICS = 10

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]


def _known_metric(value: str) -> str:
    if value not in METRICS:
        raise ValueError(f"unknown metric {value[:64]!r}; available: {', '.join(sorted(METRICS))}")
    return value


MetricName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_metric),
    Field(json_schema_extra={"enum": sorted(METRICS)}),
]


class MetricRequest(RequestModel):
    """One metric to compute, with its parameters (see the metric's documentation)."""

    name: MetricName = Field(description="a metric name, e.g. exact_match")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "metric parameters: regex {pattern, ignore_case}, json_schema {schema}, numeric {tolerance}"
        ),
    )


class EvaluateRequest(RequestModel):
    """Body of POST /api/v1/evaluate: score each prediction against its reference."""

    predictions: list[Text] = Field(
        min_length=1, max_length=MAX_ROWS, description="model outputs, one per row"
    )
    references: list[Text | None] = Field(
        max_length=MAX_ROWS,
        description="expected outputs, one per row; null only for metrics that read no reference",
    )
    metrics: list[MetricRequest] = Field(min_length=1, max_length=MAX_METRICS)
    inputs: list[Text] | None = Field(
        None, max_length=MAX_ROWS, description="the inputs of each row (reserved for judge metrics)"
    )
    include_rows: bool = Field(True, description="return each row's scores as well as the aggregates")

    @model_validator(mode="after")
    def _distinct_metrics(self) -> EvaluateRequest:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"each metric may be given once; repeated: {', '.join(duplicates)}")
        return self


class MetricSummary(ResponseModel):
    """A metric's mean over the rows with its 95% confidence interval."""

    name: str
    mean: float
    ci_low: float
    ci_high: float
    n: int = Field(description="rows scored")


class RowScores(ResponseModel):
    """One row's score for each metric (each in [0, 1])."""

    index: int = Field(description="0-based position in predictions")
    scores: dict[str, float]


class EvaluateResult(ResponseModel):
    """Aggregates (and optionally per-row scores) of one evaluation."""

    n: int = Field(description="number of rows")
    metrics: list[MetricSummary]
    rows: list[RowScores] | None = Field(None, description="per-row scores; null when include_rows is false")
