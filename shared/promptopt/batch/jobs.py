"""Batch jobs: create (pin the prompt and the rows, enqueue the chunks), read, cancel.

A job pins everything it runs with at creation: the prompt's text (a later version does not
change a running job), the dataset version, the model and its parameters. With an
Idempotency-Key the job id derives from the key and the body, so a retried create finds the job
it already made instead of making another.

What a request may ask for, and how many jobs a tenant may run, is `admission`'s business.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from promptopt.batch import admission, lookup, paths, source
from promptopt.batch import chunks as chunk_tasks
from promptopt.batch.models import MAX_CHUNK_SIZE, BatchCreate, BatchJob, EvaluationCreate
from promptopt.batch.options import BatchOptions, options
from promptopt.batch.state import Known, now, transition
from promptopt.batch.view import job_dict
from promptopt.errors import ApiError, Conflict
from promptopt.evaluation.models import ROW_MODEL_METRICS

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

    from promptopt.auth import Principal

log = logging.getLogger(__name__)

_WRITE_BATCH = 400


def default_chunk_size(concurrency: int) -> int:
    """Rows per task when neither the request nor the deployment names a size.

    Whole rounds of `concurrency` calls (a 50-row chunk at 32 runs a round of 32 then one of 18,
    wasting a third), and several rounds per task so a chunk's fixed cost (about 100 ms of reads,
    flushes and the completion check) is spread: 8 rounds, at most MAX_CHUNK_SIZE rows. Measured
    with scripts/bench/fanout: 0.62 of ideal at 50 rows, 0.83 at 256.
    """
    return max(1, min(MAX_CHUNK_SIZE, 8 * concurrency))


def new_job_id(tenant: str, body: BatchCreate, idempotency_key: str | None) -> str:
    """A job id: random, or derived from the Idempotency-Key and the body."""
    if idempotency_key is None:
        return "bj_" + secrets.token_hex(10)
    seed = json.dumps([tenant, idempotency_key, body.model_dump(mode="json")], sort_keys=True)
    return "bj_" + hashlib.sha256(seed.encode()).hexdigest()[:20]


def cancel_job(*, principal: Principal, job_id: str) -> BatchJob:
    """Stop a job in any non-final state (see `lookup.cancel_job`), as a model."""
    return BatchJob.model_validate(lookup.cancel_job(principal=principal, job_id=job_id))


def create_job(
    *,
    principal: Principal,
    body: BatchCreate,
    idempotency_key: str | None = None,
    opts: BatchOptions | None = None,
    owner: dict[str, str] | None = None,
    job_id: str | None = None,
    absent: bool = False,
) -> dict[str, Any]:
    """Pin the prompt and rows, write the job, enqueue one task per chunk; the job is then running.

    Answers the job as BatchJob's JSON fields (`view.job_dict`): building the model would cost the
    function its schema build at cold start, and the run step that creates jobs reads only the id.

    `absent`: the caller has just seen that no job has this id, so it is not read again first (a
    concurrent create of the same job still makes this one fail with `job_being_created`).

    `owner` names the experiment run a job belongs to: its completion advances that run, and the
    run's own admission (an active-run cap and its budget) replaces the tenant's job cap; such a
    caller may also fix the `job_id` (derived by `new_job_id` from a body it can rebuild).
    """
    opts = opts or options()
    tenant = principal.tenant
    job_id = job_id or new_job_id(tenant, body, idempotency_key)
    ref = paths.job_ref(tenant, job_id)
    if idempotency_key is not None and not absent:
        existing = ref.get()
        if existing.exists:
            return _resume(ref, existing.to_dict() or {})
    model = _model_id(body.model)
    system_prompt, template, pin = _resolve_prompt(principal, body)
    rows = source.resolve(tenant=tenant, body=body, max_rows=opts.max_rows)
    metrics = body.metrics if isinstance(body, EvaluationCreate) else None
    admission.check_rows(template, rows, tenant=tenant)
    if metrics is not None:
        admission.check_metrics(metrics, rows)
    if owner is None:
        _admit_spend(tenant, str(model), body, system_prompt, template, rows)
    concurrency = body.concurrency or opts.concurrency
    chunk_size = body.chunk_size or opts.chunk_size or default_chunk_size(concurrency)
    n_chunks = chunk_tasks.plan(rows.total_rows, chunk_size)
    stamp = now()
    doc: dict[str, Any] = {
        "job_id": job_id,
        "kind": "evaluation" if metrics is not None else "batch",
        # A run's job is written running: its chunks, enqueued next, then read the job exactly as
        # written (a move to running after them would make the chunk that completes it find its
        # read stale and read again, on the run's critical path). Either way a crash before the
        # enqueue leaves a job the sweeper enqueues; only a retried API create resumes a queued one.
        "status": "running" if owner is not None else "queued",
        "model": str(model),
        "provider": model.provider,
        "system_prompt": system_prompt,
        "output_prompt": template,
        "prompt": pin,
        "temperature": body.temperature,
        "max_tokens": body.max_tokens,
        # As JSON text: a schema may hold what Firestore maps cannot (arrays of arrays).
        "response_schema": json.dumps(body.response_schema) if body.response_schema is not None else None,
        "source": rows.info,
        "total_rows": rows.total_rows,
        "chunk_size": chunk_size,
        "chunks": n_chunks,
        "concurrency": concurrency,
        "cache": body.cache,
        "budget": body.budget.model_dump(),
        "queue": chunk_tasks.queue_for(model.provider),
        "task_url": chunk_tasks.known_chunk_function_url(),  # where its chunks go (see chunks.enqueue_to)
        "task_epoch": 0,
        "stop_reason": None,
        "error": None,
        "totals": None,
        "evaluation": (
            {"status": "pending", "spec": json.dumps(_metric_specs(metrics))} if metrics else None
        ),
        "created_at": stamp,
        "updated_at": stamp,
        "finished_at": None,
        "created_by": principal.subject,
        "owner": owner,
    }
    written = _write(ref, doc, rows, chunk_size)
    if owner is None:
        admission.check_capacity(ref, tenant, opts)  # the job cap, counted with this job written
    return _enqueue(ref, doc, known=Known(doc, written), cache_keys=_cache_keys(doc, rows, owner))


def _cache_keys(
    doc: dict[str, Any], rows: source.ResolvedSource, owner: dict[str, str] | None
) -> list[list[str]] | None:
    """Per chunk, the cache keys its task names (see `row_calls`): a run's inline jobs only.

    A run's next step waits on its jobs, and their chunks then look the cache up in their first
    read; an API job's chunks look it up after it (one more read per chunk, off any critical
    path), which spares its create the rendering of every row.
    """
    if owner is None or rows.inline is None or not doc["cache"]:
        return None
    from promptopt.batch import row_calls

    size = int(doc["chunk_size"])
    return [
        row_calls.cache_keys(doc, (row["inputs"] for row in rows.inline[start : start + size]))
        for start in range(0, len(rows.inline), size)
    ]


def _metric_specs(metrics: list[Any]) -> list[dict[str, Any]]:
    """The metrics as the job runs them: an llm_judge's model pinned now (the default may change)."""
    if not _model_graded(metrics):  # nothing to pin, and the grading code stays unloaded (cold start)
        return [{"name": m.name, "params": dict(m.params)} for m in metrics]
    from promptopt.batch.judging import pinned

    return [{"name": m.name, "params": pinned(m.name, m.params)} for m in metrics]


def _model_graded(metrics: list[Any]) -> bool:
    return any(metric.name in ROW_MODEL_METRICS for metric in metrics)


def _judge_upper_usd(body: BatchCreate, input_chars: int) -> float:
    """The most the grading calls of one row may cost (an answer counted at its max_tokens)."""
    if not isinstance(body, EvaluationCreate) or not _model_graded(body.metrics):
        return 0.0
    from promptopt.batch.judging import EMBEDDED, JUDGED, embedder_of, judge_of, max_prompt_chars
    from promptopt.spend import estimate

    total = 0.0
    for metric in body.metrics:
        if metric.name in EMBEDDED:  # the answer and the reference, priced at the provider model's rate
            embedder = embedder_of(metric.name, metric.params)
            chars = input_chars + body.max_tokens * estimate.MAX_CHARS_PER_TOKEN
            total += estimate.call_upper_usd(embedder.model, chars, 1)
        if metric.name in JUDGED:
            judge = judge_of(metric.name, metric.params)
            chars = max_prompt_chars(
                judge,
                input_chars=input_chars,
                reference_chars=input_chars,
                answer_chars=body.max_tokens * estimate.MAX_CHARS_PER_TOKEN,
            )
            total += estimate.call_upper_usd(judge.model, chars, judge.max_tokens)
    return total


def _admit_spend(
    tenant: str, model: str, body: BatchCreate, system_prompt: str, template: str, rows: source.ResolvedSource
) -> None:
    """402 when the job's upper-bound cost would pass the tenant's monthly spending cap."""
    from promptopt.spend import caps, estimate

    if rows.inline is not None:
        longest = max((len(str(r["inputs"])) for r in rows.inline), default=0)
        input_chars = len(system_prompt) + len(template) + longest
    else:
        input_chars = len(system_prompt) + len(template) + estimate.DEFAULT_INPUT_CHARS
    upper = rows.total_rows * estimate.call_upper_usd(model, input_chars, body.max_tokens)
    upper += rows.total_rows * _judge_upper_usd(body, input_chars)
    if body.budget.max_cost_usd is not None:
        upper = min(upper, float(body.budget.max_cost_usd))
    if upper > 0:  # free work (the simulator, an unpriced model) cannot pass a cap
        caps.admit(tenant, upper, "this batch job")


def _model_id(requested: str | None) -> Any:
    from promptopt.llm import registry
    from promptopt.llm.registry import default_model
    from promptopt.llm.types import ModelConfigError

    try:
        return registry.parse_model_id(requested or default_model())
    except ModelConfigError as exc:
        from promptopt.inference.errors import UnknownModel  # the model error classes: only for this

        raise UnknownModel(str(exc)) from None


def _resolve_prompt(principal: Principal, body: BatchCreate) -> tuple[str, str, dict[str, Any] | None]:
    from promptopt.prompts import source

    found = source.resolve(principal, body)
    pin = {"prompt_id": found.prompt_id, "version": found.version} if found.prompt_id else None
    return found.system_prompt, found.output_prompt, pin


def _write(ref: DocumentReference, doc: dict[str, Any], rows: source.ResolvedSource, chunk_size: int) -> Any:
    """Inline inputs (one document per chunk), then the job itself; returns the job's update time.

    The job is created in the same commit as the last inputs (one commit for a small job): it
    never exists without them, and a second create of it fails the whole commit.
    """
    from google.api_core import exceptions as gexc

    client = ref._client
    documents = source.inline_documents(rows.inline, chunk_size) if rows.inline is not None else []
    starts = list(range(0, len(documents), _WRITE_BATCH - 1)) or [0]
    try:
        for start in starts:
            batch = client.batch()
            for index, item in enumerate(documents[start : start + _WRITE_BATCH - 1], start):
                batch.set(paths.inputs_ref(ref, index), item)
            if start == starts[-1]:
                batch.create(ref, doc)
            results = batch.commit()
    except (gexc.AlreadyExists, gexc.Conflict):
        raise Conflict(
            "a request with this Idempotency-Key is creating this job; retry shortly",
            code="job_being_created",
        ) from None
    return results[-1].update_time


def _enqueue(
    ref: DocumentReference,
    doc: dict[str, Any],
    *,
    known: Known | None = None,
    cache_keys: list[list[str]] | None = None,
) -> dict[str, Any]:
    """Enqueue every chunk and move the job to running; an enqueue failure fails the job (503).

    `known`: the job as its creator just wrote it (the move to running then reads nothing first).
    `cache_keys`: per chunk, the keys its task names.
    """
    tenant = ref.parent.parent.id
    try:
        chunk_tasks.enqueue(
            tenant=tenant,
            job_id=ref.id,
            chunks=range(int(doc["chunks"])),
            epoch=int(doc.get("task_epoch") or 0),
            queue=str(doc["queue"]),
            sizes=(int(doc["chunk_size"]), int(doc["total_rows"])),
            cache_keys=cache_keys,
        )
    except Exception as exc:
        log.exception("enqueueing job %s failed", ref.id)
        transition(
            ref,
            to="failed",
            allowed_from=(str(doc["status"]),),
            fields={"error": {"code": "enqueue_failed", "message": "the chunks could not be queued; retry"}},
        )
        if isinstance(exc, ApiError):
            raise
        raise chunk_tasks.BatchNotConfigured(
            "the job's chunks could not be queued; retry the request", code="enqueue_failed", retry_after_s=5
        ) from exc
    if doc["status"] == "running":  # written running (a run's job): nothing to move
        return job_dict(ref, doc, fresh=True)
    changed, current = transition(ref, to="running", allowed_from=("queued",), snapshot=known)
    # Just enqueued, nothing has run yet, unless a fast chunk already moved the job on.
    return job_dict(ref, current or doc, fresh=changed)


def _resume(ref: DocumentReference, data: dict[str, Any]) -> dict[str, Any]:
    """A create retried with the same key: finish what the first attempt left undone."""
    from google.cloud.firestore import DELETE_FIELD

    status = data.get("status")
    if status == "queued":
        return _enqueue(ref, data)
    if status == "failed" and (data.get("error") or {}).get("code") == "enqueue_failed":
        # Task names of the first attempt may be spent (Cloud Tasks reserves them): a new epoch.
        epoch = int(data.get("task_epoch") or 0) + 1
        changed, current = transition(
            ref,
            to="queued",
            allowed_from=("failed",),
            fields={"task_epoch": epoch, "error": None, "finished_at": DELETE_FIELD},
        )
        if changed and current is not None:
            current["finished_at"] = None
            return _enqueue(ref, current)
    return job_dict(ref, data)
