"""Schemas of what the job reads answer: results, per-row scores and job lists.

Apart from promptopt.batch.models (requests and the job itself) so that the functions creating,
getting and cancelling jobs do not build them at cold start.
"""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from promptopt.batch.models import BatchJob, JobKind, JobStatus, PromptPin, RowStatus, SourceInfo
from promptopt.http.models import PageQuery, ResponseModel
from promptopt.store.sorting import TIME_SORT_DESCRIPTION, TimeSort


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
