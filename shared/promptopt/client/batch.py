"""`client.batch`: batch jobs and evaluation jobs (a prompt over many rows), their results and scores."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from promptopt.batch.models import BatchCreate, BatchJob, EvaluationCreate
from promptopt.batch.read_models import BatchResultRow, JobScores, ResultsPage
from promptopt.client._base import Resource, body_of, parse
from promptopt.client.errors import JobFailed
from promptopt.client.http import clean, segment
from promptopt.client.paging import pages
from promptopt.client.waiting import wait_until

FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "budget_exhausted"})

#: A metric: its name, or {"name": ..., "params": {...}}.
Metric = str | Mapping[str, Any]


def metric_requests(metrics: Sequence[Metric]) -> list[dict[str, Any]]:
    """Metric names or {name, params} mappings as the API's metric requests."""
    return [{"name": m, "params": {}} if isinstance(m, str) else {"params": {}, **dict(m)} for m in metrics]


def settled(job: BatchJob) -> bool:
    """Final, and an evaluation stopped at its budget has its metrics (they follow shortly)."""
    if job.status not in FINAL_STATUSES:
        return False
    if job.status == "budget_exhausted" and job.evaluation is not None:
        return job.evaluation.status != "pending"
    return True


class Batch(Resource):
    """The /api/v1/inference/batch and /api/v1/inference/evaluate endpoints."""

    def run(
        self,
        *,
        prompt_id: str | None = None,
        version: int | None = None,
        label: str | None = None,
        output_prompt: str | None = None,
        system_prompt: str | None = None,
        dataset_id: str | None = None,
        dataset_version: int | None = None,
        split: str | None = None,
        rows: Sequence[Mapping[str, Any]] | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        budget: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
        concurrency: int | None = None,
        cache: bool | None = None,
        metrics: Sequence[Metric] | None = None,
        idempotency_key: str | None = None,
    ) -> BatchJob:
        """Start a job: a prompt over a dataset split or inline rows.

        The prompt is stored (`prompt_id`, with `version` or `label`) or inline (`output_prompt`,
        `system_prompt`); the rows are a dataset version and split (`dataset_id`) or inline `rows`
        ({"inputs": {...}, "reference": ...}).

        With `metrics` it is an evaluation job: once every row is done, the answers are scored
        (`evaluate` says the same). Answers 202 at once; `wait` follows the job.
        """
        dataset = None
        if dataset_id is not None:
            dataset = clean({"dataset_id": dataset_id, "version": dataset_version, "split": split})
        elif dataset_version is not None or split is not None:
            raise ValueError("dataset_version and split apply with dataset_id")
        fields: dict[str, Any] = {
            "prompt_id": prompt_id,
            "version": version,
            "label": label,
            "output_prompt": output_prompt,
            "system_prompt": system_prompt,
            "dataset": dataset,
            "rows": [dict(r) for r in rows] if rows is not None else None,
            "model": model,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "budget": dict(budget) if budget else None,
            "chunk_size": chunk_size,
            "concurrency": concurrency,
            "cache": cache,
        }
        if metrics:
            fields["metrics"] = metric_requests(metrics)
            body, path = body_of(EvaluationCreate, fields), "/inference/evaluate"
        else:
            body, path = body_of(BatchCreate, fields), "/inference/batch"
        return parse(BatchJob, self._http.post(path, body, idempotency_key=idempotency_key).body)

    def evaluate(self, *, metrics: Sequence[Metric], **job: Any) -> BatchJob:
        """An evaluation job: `run` with `metrics` (names, or {name, params})."""
        if not metrics:
            raise ValueError("an evaluation needs at least one metric")
        return self.run(metrics=metrics, **job)

    def get(self, job_id: str) -> BatchJob:
        """The job: status, progress, usage and cost, and (evaluations) metrics with 95% CIs."""
        return parse(BatchJob, self._http.request("GET", f"/inference/batch/{segment(job_id)}").body)

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = 3600.0,
        on_progress: Callable[[BatchJob], None] | None = None,
        raise_on_failure: bool = True,
    ) -> BatchJob:
        """Poll until the job settles; the job as it then is.

        A job that failed raises JobFailed (unless `raise_on_failure` is False); one that stopped
        at its budget or was cancelled is returned (its status says so). WaitTimeout past
        `timeout_s` (the job keeps running).
        """
        job = wait_until(
            lambda: self.get(job_id),
            settled=settled,
            what=job_id,
            timeout_s=timeout_s,
            on_progress=on_progress,
        )
        if raise_on_failure and (job.status == "failed" or _evaluation_failed(job)):
            error = job.error or (job.evaluation.error if job.evaluation else None)
            raise JobFailed(job_id, error.message if error else "no reason given", job)
        return job

    def results(
        self,
        job_id: str,
        *,
        status: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ResultsPage:
        """One page of the rows' results, in row order (`status`: succeeded or failed only)."""
        params = clean({"status": status, "page_size": page_size, "page_token": page_token})
        reply = self._http.request("GET", f"/inference/batch/{segment(job_id)}/results", params=params)
        return parse(ResultsPage, reply.body)

    def iterate_results(
        self, job_id: str, *, status: str | None = None, page_size: int | None = 100
    ) -> Iterator[BatchResultRow]:
        """Every row's result, in row order."""

        def fetch(token: str | None) -> ResultsPage:
            return self.results(job_id, status=status, page_size=page_size, page_token=token)

        for page in pages(fetch):
            yield from page.items

    def scores(self, job_id: str) -> JobScores:
        """An evaluation job's per-row scores, metric by metric (Conflict, 409, until it is scored)."""
        return parse(JobScores, self._http.request("GET", f"/inference/batch/{segment(job_id)}/scores").body)

    def cancel(self, job_id: str) -> BatchJob:
        """Stop a job that has not finished; rows already done are kept."""
        return parse(BatchJob, self._http.post(f"/inference/batch/{segment(job_id)}/cancel").body)


def _evaluation_failed(job: BatchJob) -> bool:
    return job.evaluation is not None and job.evaluation.status == "failed"
