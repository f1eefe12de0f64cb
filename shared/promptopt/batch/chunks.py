"""Splitting a job into chunks and enqueueing one Cloud Task per chunk.

Task names are deterministic, `<hash>-<job_id>-<chunk>-<epoch>`: enqueueing the same job twice (a
retried create) collides in Cloud Tasks instead of duplicating work. The epoch changes only when
a job is re-enqueued after a failed enqueue, because Cloud Tasks keeps a name reserved for a
while after its task ran (the local emulator keeps names taken the same way, see
local.tasks_emulator). Correctness never relies on it: the runner skips rows already done.

The queue is chosen per model family: `inference-<provider>` when configured (its rate limits
are that family's global limits), else `inference`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, NamedTuple

from promptopt.config import settings
from promptopt.errors import ApiError
from promptopt.tasks_grpc import HttpTask, create_task

log = logging.getLogger(__name__)

CHUNK_FUNCTION = "batch_chunk"
DEFAULT_QUEUE = "inference"
_ENQUEUE_THREADS = 16


class BatchNotConfigured(ApiError):
    """The deployment lacks the queue or the chunk function's URL."""

    status, code, title = 503, "batch_not_configured", "Batch inference not configured"


class ChunkTask(NamedTuple):
    """What one task carries: enough to find the chunk (rows are read from their source).

    `rows`: the chunk's job rows, so that its delivery can read the job, the chunk's record, its
    inline rows and its rows' results in one batched read, before it knows the job's chunk size.
    `cache`: the cache keys of the chunk's calls, read in that same batched read (see `row_calls`).
    """

    tenant: str
    job_id: str
    chunk: int
    rows: range | None = None
    cache: tuple[str, ...] = ()

    def body(self) -> bytes:
        """The JSON body the chunk function receives."""
        payload: dict[str, Any] = {"tenant": self.tenant, "job_id": self.job_id, "chunk": self.chunk}
        if self.rows is not None:
            payload["rows"] = [self.rows.start, self.rows.stop]
        if self.cache:
            payload["cache"] = list(self.cache)
        return json.dumps(payload).encode()


def plan(total_rows: int, chunk_size: int) -> int:
    """How many chunks `total_rows` rows make."""
    return max(1, -(-total_rows // chunk_size))


def chunk_bounds(chunk: int, chunk_size: int, total_rows: int) -> range:
    """The job rows of one chunk."""
    start = chunk * chunk_size
    return range(start, min(start + chunk_size, total_rows))


def task_id(job_id: str, chunk: int, epoch: int) -> str:
    """The task's id within its queue: `<hash>-<job_id>-<chunk>-<epoch>`.

    Cloud Tasks dispatches slower from names with sequential prefixes, so a short hash of the
    rest leads; the rest keeps the name readable (and findable by job id).
    """
    rest = f"{job_id}-{chunk:05d}-{epoch}"
    return f"{hashlib.sha256(rest.encode()).hexdigest()[:6]}-{rest}"


def queue_for(provider: str) -> str:
    """The full queue name for a model family."""
    cfg = settings()
    name = cfg.queues.get(f"{DEFAULT_QUEUE}-{provider}") or cfg.queues.get(DEFAULT_QUEUE) or DEFAULT_QUEUE
    if name.startswith("projects/"):
        return name
    return f"projects/{cfg.project_id}/locations/{cfg.region}/queues/{name}"


# Task functions are deployed before the functions that enqueue to them and are not told function
# URLs (terraform/main.tf), so a chunk that advances its run enqueues the next jobs' chunks to the
# URL its own job's chunks were sent to (stored on the job as `task_url`).
_enqueue_url: ContextVar[str | None] = ContextVar("promptopt_chunk_url", default=None)


@contextlib.contextmanager
def enqueue_to(url: str) -> Iterator[None]:
    """Within this context (and the threads it starts with its context), chunks go to `url`."""
    token = _enqueue_url.set(url)
    try:
        yield
    finally:
        _enqueue_url.reset(token)


def known_chunk_function_url() -> str | None:
    """`chunk_function_url()`, or None where this deployment does not know it."""
    try:
        return chunk_function_url()
    except BatchNotConfigured:
        return None


def chunk_function_url() -> str:
    """The chunk function's URL: `enqueue_to`'s, configured, or derived from the functions base URL."""
    override = _enqueue_url.get()
    if override:
        return override
    cfg = settings()
    url = cfg.function_urls.get(CHUNK_FUNCTION) or cfg.function_urls.get(CHUNK_FUNCTION.replace("_", "-"))
    if url:
        return url
    if cfg.functions_base_url:
        return f"{cfg.functions_base_url.rstrip('/')}/{cfg.function_prefix}{CHUNK_FUNCTION.replace('_', '-')}"
    raise BatchNotConfigured(
        "no URL for the batch_chunk function: set PROMPTOPT_FUNCTION_URLS or PROMPTOPT_FUNCTIONS_BASE_URL"
    )


def _task(queue: str, url: str, task: ChunkTask, epoch: int, deadline_s: int) -> HttpTask:
    return HttpTask(
        name=f"{queue}/tasks/{task_id(task.job_id, task.chunk, epoch)}",
        url=url,
        body=task.body(),
        headers={"Content-Type": "application/json"},
        deadline_s=deadline_s,
        # in the cloud the function only admits the tasks invoker account
        oidc_account=settings().tasks_service_account or None,
    )


def enqueue(
    *,
    tenant: str,
    job_id: str,
    chunks: Sequence[int],
    epoch: int,
    queue: str,
    sizes: tuple[int, int] | None = None,
    cache_keys: Sequence[Sequence[str]] | None = None,
    deadline_s: int = 600,
) -> int:
    """Create one task per chunk, in parallel; an existing task of the same name counts as created.

    `sizes`: the job's (chunk_size, total_rows); each task then carries its chunk's rows (see
    `ChunkTask`). `cache_keys`: per chunk (by number), the cache keys its task names. Returns how
    many tasks were newly created. Any other failure propagates after every create was tried (the
    caller marks the job failed or retries).
    """
    url = chunk_function_url()

    def create(chunk: int) -> bool:
        rows = chunk_bounds(chunk, *sizes) if sizes else None
        keys = tuple(cache_keys[chunk]) if cache_keys is not None and chunk < len(cache_keys) else ()
        task = ChunkTask(tenant, job_id, chunk, rows, keys)
        return create_task(queue, _task(queue, url, task, epoch, deadline_s))

    with ThreadPoolExecutor(max_workers=min(_ENQUEUE_THREADS, len(chunks)) or 1) as pool:
        futures = [pool.submit(create, chunk) for chunk in chunks]
    created = 0
    first_error: BaseException | None = None
    for future in futures:
        error = future.exception()
        if error is None:
            created += int(future.result())
        elif first_error is None:
            first_error = error
    if first_error is not None:
        raise first_error
    log.info("enqueued %d tasks for %s on %s", created, job_id, queue, extra={"fields": {"job_id": job_id}})
    return created
