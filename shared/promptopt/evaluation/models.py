"""Evaluation schemas: synchronous, size-capped scoring of predictions against references."""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from promptopt.evaluation.names import DETERMINISTIC_METRICS, METRIC_NAMES, MODEL_METRIC_NAMES
from promptopt.evaluation.params import check_metric_params
from promptopt.http.models import RequestModel, ResponseModel

MAX_ROWS = 5_000
MAX_JUDGE_ROWS = 100  # llm_judge makes one model call per distinct row within the request's deadline
MAX_TEXT_CHARS = 20_000
MAX_METRICS = 10

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]


def _known(names: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"unknown metric {value[:64]!r}; available: {', '.join(names)}")
        return value

    return AfterValidator(check)


# Model-graded metrics a batch job computes row by row: the chunk that answers a row grades it.
ROW_MODEL_METRICS = MODEL_METRIC_NAMES
_ROW_METRICS = tuple(sorted({*DETERMINISTIC_METRICS, *ROW_MODEL_METRICS}))

# What row-at-a-time scorers (batch jobs, experiments) compute: every metric, model-graded ones included.
MetricName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    _known(_ROW_METRICS),
    Field(json_schema_extra={"enum": list(_ROW_METRICS)}),
]
# Every metric, model-backed ones (embedding_similarity, llm_judge) included.
AnyMetricName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    _known(METRIC_NAMES),
    Field(json_schema_extra={"enum": list(METRIC_NAMES)}),
]


class MetricRequest(RequestModel):
    """One row metric to compute, with its parameters (see the metric's documentation)."""

    name: MetricName = Field(description="a metric name, e.g. exact_match or llm_judge")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "metric parameters: regex {pattern, ignore_case}, json_schema {schema}, numeric {tolerance}, "
            "embedding_similarity {model, threshold}, llm_judge {rubric, scale, model, max_tokens}; regex "
            "patterns are RE2 syntax, schemas may only hold local ($ref '#...') references"
        ),
    )

    @model_validator(mode="after")
    def _known_params(self) -> Self:
        check_metric_params(self.name, self.params)  # a MetricError is a ValueError: a 400 naming it
        return self


class EvaluateMetric(MetricRequest):
    """One metric to compute, deterministic or model-backed, with its parameters."""

    name: AnyMetricName = Field(description="a metric name, e.g. exact_match or llm_judge")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "metric parameters: regex {pattern, ignore_case}, json_schema {schema}, numeric {tolerance}, "
            "embedding_similarity {model, threshold}, llm_judge {rubric, scale, model, max_tokens}"
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
    metrics: list[EvaluateMetric] = Field(min_length=1, max_length=MAX_METRICS)
    inputs: list[Text] | None = Field(
        None, max_length=MAX_ROWS, description="the inputs of each row; llm_judge shows them to the judge"
    )
    include_rows: bool = Field(True, description="return each row's scores as well as the aggregates")

    @model_validator(mode="after")
    def _distinct_metrics(self) -> Self:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"each metric may be given once; repeated: {', '.join(duplicates)}")
        return self


class MetricUsage(ResponseModel):
    """The model calls a model-backed metric made, and what they cost."""

    model: str = Field(description="the model id called, e.g. gemini:text-embedding-005")
    calls: int = Field(description="model requests made (embedding batches, or judge calls)")
    input_tokens: int
    output_tokens: int
    cost_usd: float = Field(description="from the price table; 0 for simulated and unpriced models")
    simulated: bool = Field(description="true for sim:* models: not a real model's judgement")


class MetricSummary(ResponseModel):
    """A metric's mean over the rows with its 95% confidence interval."""

    name: str
    mean: float
    ci_low: float
    ci_high: float
    n: int = Field(description="rows scored")
    errors: int = Field(
        0, description="rows scored 0 because the model's answer for them was unusable (see rows[].errors)"
    )
    usage: MetricUsage | None = Field(None, description="model-backed metrics only: model calls and cost")


class RowScores(ResponseModel):
    """One row's score for each metric (each in [0, 1])."""

    index: int = Field(description="0-based position in predictions")
    scores: dict[str, float]
    errors: dict[str, str] | None = Field(
        None, description="metric name -> why this row scored 0 without a grade; null when none"
    )
    reasons: dict[str, str] | None = Field(
        None, description="metric name -> the judge's reason for this row's score; null when none"
    )


class EvaluateResult(ResponseModel):
    """Aggregates (and optionally per-row scores) of one evaluation."""

    n: int = Field(description="number of rows")
    metrics: list[MetricSummary]
    rows: list[RowScores] | None = Field(None, description="per-row scores; null when include_rows is false")
    cost_usd: float = Field(0.0, description="model cost of the model-backed metrics, summed")
