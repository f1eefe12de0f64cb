"""A chunk task as Cloud Tasks delivers it: the body's model and the handler `serve_task` calls.

Cloud Tasks POSTs the task body and numbers the attempt in headers (see `http.events.TaskAttempt`).
Any 2xx deletes the task; anything else is retried with the queue's backoff, which slows down
further on 503 and 429. So: done or skipped → 200; rows left pending → 503 with Retry-After; a body
that is not a chunk task → 400 (retrying cannot fix it; it shows in the queue's metrics).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from promptopt import logs
from promptopt.batch.models import MAX_CHUNK_SIZE
from promptopt.batch.runner import Delivery, run_chunk
from promptopt.http.events import TaskAttempt, TaskOutcome

log = logging.getLogger(__name__)


CacheKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class ChunkTask(BaseModel):
    """The body of a chunk task (written by the job's fan-out)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    tenant: str = Field(min_length=1, max_length=128)
    job_id: str = Field(min_length=1, max_length=64)
    chunk: int = Field(ge=0, le=10_000_000)
    # The chunk's job rows [start, stop) (tasks enqueued before this field existed have none).
    rows: list[int] | None = Field(default=None, min_length=2, max_length=2)
    # The cache keys of the chunk's calls, read with the job (a run's jobs name them).
    cache: list[CacheKey] | None = Field(default=None, max_length=MAX_CHUNK_SIZE)


def _rows(named: list[int] | None) -> range | None:
    """The rows a task names, if they can be a chunk's (otherwise the chunk reads them as before)."""
    if not named or not 0 <= named[0] <= named[1] or named[1] - named[0] > MAX_CHUNK_SIZE:
        return None
    return range(named[0], named[1])


def run(task: ChunkTask, attempt: TaskAttempt) -> TaskOutcome:
    """Run the chunk a task names and say whether Cloud Tasks should deliver it again."""
    logs.bind(tenant=task.tenant, job_id=task.job_id)
    delivery = Delivery(
        tenant=task.tenant,
        job_id=task.job_id,
        chunk=task.chunk,
        rows=_rows(task.rows),
        cache_keys=tuple(dict.fromkeys(task.cache or ())),  # each read once, however often named
        retry_count=attempt.retry_count,
        execution_count=attempt.execution_count,
    )
    report = run_chunk(delivery)
    fields = asdict(report)
    log.info(
        "chunk %d of %s: %s",
        task.chunk,
        task.job_id,
        report.status,
        extra={
            "fields": {
                "chunk": task.chunk,
                "retry_count": attempt.retry_count,
                "execution_count": attempt.execution_count,
                **fields,
            }
        },
    )
    return TaskOutcome(fields, retry=report.status == "retry", retry_after_s=report.retry_after_s)
