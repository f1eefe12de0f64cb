"""Batch inference schemas: a prompt run over many rows as an asynchronous job, optionally scored.

A job is created by POST /api/v1/inference/batch (or /api/v1/inference/evaluate, which adds
metrics), answers 202 at once, and is then read with GET /api/v1/inference/batch/{job_id}.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from promptopt.evaluation.models import MAX_METRICS, MetricRequest, MetricSummary
from promptopt.http.models import MAX_VERSION, RequestModel, ResponseModel
from promptopt.inference.models import MAX_VARIABLES, VariableName, VariableValue, check_response_schema
from promptopt.prompts.source import PromptSource

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
    def _one_row_source(self) -> Self:
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
