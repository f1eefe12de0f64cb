"""Batch inference schemas: a prompt run over many rows as an asynchronous job, optionally scored.

A job is created by POST /api/v1/inference/batch (or /api/v1/inference/evaluate, which adds
metrics), answers 202 at once, and is then read with GET /api/v1/inference/batch/{job_id}.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from promptopt.evaluation.models import MAX_METRICS, MetricRequest, MetricSummary
from promptopt.http.models import MAX_VERSION, PageQuery, RequestModel, ResponseModel
from promptopt.inference.models import MAX_VARIABLES, VariableName, VariableValue, check_response_schema
from promptopt.prompts.source import PromptSource
from promptopt.store.sorting import TIME_SORT_DESCRIPTION, TimeSort

MAX_INLINE_ROWS = 2_000
MAX_CHUNK_SIZE = 500
MAX_CONCURRENCY = 64
# Budgets far beyond any real job, yet well inside what Firestore's 64-bit integers hold.
MAX_BUDGET_CALLS = 10**12
MAX_BUDGET_TOKENS = 10**15
MAX_BUDGET_USD = 10**9

# queued: created, tasks being enqueued; running: tasks enqueued; evaluating: every row is
# terminal and the evaluation step is due. completed, failed, cancelled, budget_exhausted are final.
JobStatus = Literal["queued", "running", "evaluating", "completed", "failed", "cancelled", "budget_exhausted"]
JobKind = Literal["batch", "evaluation"]
RowStatus = Literal["succeeded", "failed"]
# not_run: the job was cancelled or failed before its answers could be scored.
EvaluationStatus = Literal["pending", "completed", "failed", "not_run"]

ACTIVE_STATUSES: tuple[str, ...] = ("queued", "running")
FINAL_STATUSES: tuple[str, ...] = ("completed", "failed", "cancelled", "budget_exhausted")


def _check_row_variables(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_VARIABLES:
        raise ValueError(f"a row holds at most {MAX_VARIABLES} variables")
    return value


class InlineRow(RequestModel):
    """One row given in the request: the template's variables and, to be scored, a reference."""

    inputs: Annotated[dict[VariableName, VariableValue], AfterValidator(_check_row_variables)] = Field(
        description="fills the template's placeholders by name"
    )
    reference: VariableValue | None = Field(None, description="the expected output (for evaluation)")


class DatasetSource(RequestModel):
    """Rows of a ready dataset version (the job pins the version it resolved)."""

    dataset_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="default: the newest ready version")
    split: Literal["train", "validation", "test"] | None = Field(
        None, description="one split; default: train, validation and test in that order"
    )


class Budget(RequestModel):
    """Hard limits checked before each chunk runs; a job that reaches one stops as budget_exhausted."""

    max_calls: int | None = Field(
        None, ge=1, le=MAX_BUDGET_CALLS, description="model calls (cache hits are free)"
    )
    max_tokens: int | None = Field(None, ge=1, le=MAX_BUDGET_TOKENS, description="input plus output tokens")
    max_cost_usd: float | None = Field(
        None, gt=0, le=MAX_BUDGET_USD, allow_inf_nan=False, description="cost from the price table"
    )


class BatchCreate(PromptSource):
    """Body of POST /api/v1/inference/batch: one prompt over a dataset version or inline rows.

    The prompt is stored (`prompt_id`, optionally `version` or `label`) or inline (`output_prompt`
    and optionally `system_prompt`). Rows come from `dataset` or `rows`, never both; each row's
    inputs fill the template's placeholders.
    """

    dataset: DatasetSource | None = None
    rows: list[InlineRow] | None = Field(None, min_length=1, max_length=MAX_INLINE_ROWS)
    model: Annotated[str, StringConstraints(min_length=1, max_length=160)] | None = Field(
        None, description="<provider>:<model>; default: the deployment's PROMPTOPT_DEFAULT_MODEL"
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=1, le=8192)
    response_schema: Annotated[dict[str, Any], AfterValidator(check_response_schema)] | None = None
    budget: Budget = Field(default_factory=Budget)
    chunk_size: int | None = Field(
        None, ge=1, le=MAX_CHUNK_SIZE, description="rows per task (default 8 x concurrency, at most 500)"
    )
    concurrency: int | None = Field(
        None, ge=1, le=MAX_CONCURRENCY, description="model calls in flight per chunk (default 32)"
    )
    cache: bool = Field(
        True, description="reuse answers to identical calls (same model, parameters, messages)"
    )

    @model_validator(mode="after")
    def _one_row_source(self) -> BatchCreate:
        if (self.dataset is None) == (self.rows is None):
            raise ValueError("give either dataset or rows")
        return self


def _distinct_metrics(value: list[MetricRequest]) -> list[MetricRequest]:
    names = [m.name for m in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"each metric may be given once; repeated: {', '.join(repeated)}")
    return value


class EvaluationCreate(BatchCreate):
    """Body of POST /api/v1/inference/evaluate: a batch job whose answers are then scored."""

    metrics: Annotated[list[MetricRequest], AfterValidator(_distinct_metrics)] = Field(
        min_length=1, max_length=MAX_METRICS
    )


class PromptPin(ResponseModel):
    """The stored prompt version a job runs (null for inline prompts)."""

    prompt_id: str
    version: int


class SourceInfo(ResponseModel):
    """Where the rows come from; for a dataset, the version the job pinned."""

    type: Literal["inline", "dataset"]
    dataset_id: str | None = None
    dataset_version: int | None = None
    split: str | None = None


class Progress(ResponseModel):
    """Rows by state; `pending` rows have no terminal result yet."""

    total: int
    succeeded: int
    failed: int
    pending: int
    cache_hits: int


class Usage(ResponseModel):
    """What the job's model calls consumed, llm_judge's included (cache hits cost nothing)."""

    calls: int = Field(description="model calls, judge calls included")
    judge_calls: int = Field(
        0, description="of `calls`, those grading rows (llm_judge's judge, embedding_similarity's embeddings)"
    )
    input_tokens: int
    output_tokens: int
    cost_usd: float


class JobError(ResponseModel):
    """Why a job failed, in words a person can act on."""

    code: str
    message: str


class EvaluationInfo(ResponseModel):
    """The evaluation step of an evaluation job: its metrics with 95% confidence intervals."""

    status: EvaluationStatus
    metrics: list[MetricSummary] = Field(default_factory=list)
    n: int | None = Field(None, description="rows scored (failed rows score 0)")
    failed_rows: int | None = None
    partial: bool = Field(False, description="true when the job stopped before every row ran")
    error: JobError | None = None


class BatchJob(ResponseModel):
    """A batch inference job."""

    job_id: str
    kind: JobKind
    status: JobStatus
    model: str
    prompt: PromptPin | None
    source: SourceInfo
    chunk_size: int
    chunks: int
    concurrency: int
    cache: bool
    budget: Budget
    progress: Progress
    usage: Usage
    stop_reason: str | None = Field(None, description="why a job stopped early (cancelled, budget)")
    error: JobError | None = None
    evaluation: EvaluationInfo | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    created_by: str


class RowError(ResponseModel):
    """Why one row failed permanently (its chunk went on without it)."""

    code: str
    message: str


class RowVerdict(ResponseModel):
    """A model-graded metric's verdict on one row (its calls count in the row's usage)."""

    score: float = Field(description="in [0, 1]; 0 when the model gave no usable grade (see error)")
    reason: str | None = Field(None, description="the judge's reason (llm_judge)")
    error: RowError | None = Field(None, description="why the row has no grade")
    model: str
    cached: bool = Field(description="answered from the response cache or by an identical request")


class BatchResultRow(ResponseModel):
    """One row's terminal result."""

    row: int = Field(description="0-based position in the job")
    status: RowStatus
    output: str | None
    error: RowError | None = None
    inputs: dict[str, str]
    reference: str | None = None
    dataset_row: int | None = Field(None, description="the dataset row it came from")
    split: str | None = None
    cached: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: int
    finish_reason: str | None = None
    judge: dict[str, RowVerdict] | None = Field(
        None, description="model-graded metric (llm_judge, embedding_similarity) -> its verdict on the row"
    )


class ResultsPage(ResponseModel):
    """One page of a job's results, in row order."""

    items: list[BatchResultRow]
    next_page_token: str | None = None
    job_id: str


class ResultsQuery(PageQuery):
    """GET /api/v1/inference/batch/{job_id}/results."""

    status: RowStatus | None = Field(None, description="only rows with this status")


class RowJudgeError(ResponseModel):
    """One row whose grading call failed or whose judge answer could not be used."""

    row: int = Field(description="0-based job row")
    code: str = Field(description="e.g. unusable_judge_answer, or the model error's code")
    message: str = Field(description="what went wrong, cut at 300 characters")


class MetricRowScores(ResponseModel):
    """One metric's score for each row of an evaluation job."""

    name: str
    params: dict[str, Any] = Field(description="the metric's parameters as the job ran it")
    rows: list[int] = Field(description="0-based job rows, in row order")
    values: list[float | None] = Field(
        description="each row's score in [0, 1] (failed rows score 0); null where the metric does not apply"
    )
    judge_errors: list[RowJudgeError] | None = Field(
        None,
        description=(
            "model-graded metrics (llm_judge, embedding_similarity) only: the rows whose grading failed "
            "(each scores 0), in row order, at most 500 listed; null for other metrics"
        ),
    )
    judge_error_count: int | None = Field(
        None,
        description="model-graded metrics only: how many rows' grading failed (all of them, listed or not)",
    )


class JobScores(ResponseModel):
    """GET /api/v1/inference/batch/{job_id}/scores: per-row scores for paired comparisons."""

    job_id: str
    model: str
    prompt: PromptPin | None
    source: SourceInfo = Field(description="the pinned rows: jobs with the same source pair row by row")
    partial: bool = Field(description="true when the job stopped before every row ran")
    metrics: list[MetricRowScores]


class BatchListQuery(PageQuery):
    """GET /api/v1/inference/batch: a tenant's jobs, newest first."""

    status: JobStatus | None = None
    kind: JobKind | None = None
    prompt_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="only jobs of this stored prompt"
    )
    sort: TimeSort = Field("-created", description=TIME_SORT_DESCRIPTION)


class BatchJobPage(ResponseModel):
    """One page of jobs, newest first."""

    items: list[BatchJob]
    next_page_token: str | None = None
