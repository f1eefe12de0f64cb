"""Admission of a new job: what its request may ask for, and how many jobs a tenant may run.

Checks that need no model call run before anything is written: inline rows fill the template,
the rows hold the references the metrics read, and every metric accepts its params.

A tenant runs at most `max_active_jobs` queued or running jobs. The check is one count() query
(never a counter document) made after the job is written: when the count passes the cap, the
newest jobs back out with 429 (deleted before their chunks are enqueued), so the cap holds however
many creates race, and an admitted create pays a single count. A count before the write would
only spare a refused create its write and delete, at the cost of a round trip on every create.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.batch import paths, source
from promptopt.batch.aggregate import aggregate
from promptopt.batch.options import BatchOptions
from promptopt.errors import ApiError, InvalidRequest
from promptopt.prompts.templates import placeholders

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

_DELETE_BATCH = 400
# Metrics that never read the reference (regex reads it only through {reference} in its pattern).
_REFERENCE_FREE = {"json_valid", "json_schema"}


class TooManyJobs(ApiError):
    """The tenant already runs as many jobs as it may."""

    status, code, title = 429, "too_many_jobs", "Too many running jobs"


def check_rows(template: str, rows: source.ResolvedSource, *, tenant: str | None = None) -> None:
    """Inline rows, and a dataset version's input fields, must fill every placeholder."""
    if rows.inline is None:
        if tenant is not None and rows.info.get("type") == "dataset":
            from promptopt.batch.variables import check_dataset

            check_dataset(tenant, template, rows.info)
        return
    needed = placeholders(template)
    for index, row in enumerate(rows.inline):
        missing = [name for name in needed if name not in row["inputs"]]
        if missing:
            from promptopt.inference.errors import MissingVariables

            raise MissingVariables(
                f"row {index} has no value for: {', '.join(missing)}", missing=missing, index=index
            )


def reads_reference(name: str, params: dict[str, Any]) -> bool:
    """Whether a metric compares with the reference (regex only through `{reference}`)."""
    if name == "regex":
        pattern = params.get("pattern")
        return isinstance(pattern, str) and "{reference}" in pattern
    return name not in _REFERENCE_FREE


def _check_references(metrics: list[Any], rows: source.ResolvedSource) -> None:
    if rows.has_references:
        return
    for metric in metrics:
        if reads_reference(metric.name, metric.params):
            where = (
                "every row needs a reference"
                if rows.inline is not None
                else "the dataset has no reference column"
            )
            raise InvalidRequest(
                f"metric {metric.name} compares answers with references, but {where}",
                code="reference_required",
                metric=metric.name,
            )


def check_metrics(metrics: list[Any], rows: source.ResolvedSource) -> None:
    """The rows hold what the metrics read, and each metric accepts its params."""
    _check_references(metrics, rows)
    _check_params(metrics)


def _check_judge_model(metric: Any) -> None:
    """A model-graded metric's model id must parse as a known provider's (400 unknown_model)."""
    from promptopt.evaluation.model_calls import metric_model
    from promptopt.inference.errors import UnknownModel
    from promptopt.llm.types import ModelConfigError

    try:
        metric_model(metric.params)
    except ModelConfigError as exc:
        raise UnknownModel(f"metric {metric.name}: params.model: {exc}", metric=metric.name) from None


def _check_params(metrics: list[Any]) -> None:
    """Refuse params a metric cannot use (a bad regex, an invalid schema, an unknown judge model)."""
    from promptopt.evaluation.errors import MetricError
    from promptopt.evaluation.models import ROW_MODEL_METRICS
    from promptopt.evaluation.row_metrics import METRICS

    for metric in metrics:
        try:
            if metric.name in ROW_MODEL_METRICS:  # the grading code loads only for these (cold start)
                from promptopt.batch.judging import check

                _check_judge_model(metric)
                check(metric.name, metric.params)
                continue
            METRICS[metric.name].score("0", "0", metric.params)
        except (MetricError, ValueError, TypeError, RecursionError) as exc:
            detail = str(exc) if isinstance(exc, MetricError) else f"{type(exc).__name__} in its params"
            raise InvalidRequest(
                f"metric {metric.name}: {detail}", code="invalid_metric_params", metric=metric.name
            ) from None


def _active_jobs(tenant: str) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    # The job schemas load here, not with this module: experiments check metrics through it.
    from promptopt.batch.models import ACTIVE_STATUSES

    # Jobs an experiment run owns count against the run's limits, not the tenant's job cap.
    return (
        paths.jobs(tenant)
        .where(filter=FieldFilter("status", "in", list(ACTIVE_STATUSES)))
        .where(filter=FieldFilter("owner", "==", None))
    )


def _count_active(tenant: str) -> int:
    return int(aggregate(_active_jobs(tenant), count="n").get("n") or 0)


def _too_many(opts: BatchOptions) -> TooManyJobs:
    return TooManyJobs(
        f"at most {opts.max_active_jobs} batch jobs may be queued or running at once; "
        "wait for one to finish or cancel one",
        retry_after_s=30,
        limit=opts.max_active_jobs,
    )


def check_capacity(ref: DocumentReference, tenant: str, opts: BatchOptions) -> None:
    """After writing the job `ref`: if the tenant's jobs now pass the cap, the newest back out (429)."""
    if _count_active(tenant) <= opts.max_active_jobs:
        return
    active = sorted((s.get("created_at"), s.id) for s in _active_jobs(tenant).select(["created_at"]).stream())
    admitted = {job_id for _, job_id in active[: opts.max_active_jobs]}
    if ref.id in admitted:
        return
    ref.delete()  # first the job, so no reader sees it half removed; then its inline rows
    inputs = list(ref.collection("inputs").list_documents())
    for start in range(0, len(inputs), _DELETE_BATCH):
        batch = ref._client.batch()
        for doc in inputs[start : start + _DELETE_BATCH]:
            batch.delete(doc)
        batch.commit()
    raise _too_many(opts)
