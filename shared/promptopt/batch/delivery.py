"""The HTTP side of a chunk task: Cloud Tasks' request in, a status it understands out.

Cloud Tasks POSTs the task body and names the attempt in headers: `X-CloudTasks-TaskRetryCount`
(attempts before this one, 0 on the first) and `X-CloudTasks-TaskExecutionCount` (those that got
a response). Any 2xx deletes the task; anything else is retried with the queue's backoff, which
slows down further on 503 and 429. So: done or skipped → 200; rows left pending → 503 with
Retry-After; a body that is not a chunk task → 400 (retrying cannot fix it; it shows in metrics).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import flask

from promptopt import logs
from promptopt.batch.runner import ChunkReport, Delivery, run_chunk

log = logging.getLogger(__name__)

RETRY_HEADER = "X-CloudTasks-TaskRetryCount"
EXECUTION_HEADER = "X-CloudTasks-TaskExecutionCount"
TASK_NAME_HEADER = "X-CloudTasks-TaskName"


class BadTask(ValueError):
    """The request is not a chunk task."""


def _count(request: flask.Request, header: str) -> int:
    raw = request.headers.get(header, "0").strip() or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        raise BadTask(f"{header} is not a number") from None


def parse(request: flask.Request) -> Delivery:
    """The delivery a request carries."""
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        raise BadTask("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadTask("the body is not a JSON object")
    tenant, job_id, chunk = body.get("tenant"), body.get("job_id"), body.get("chunk")
    if not isinstance(tenant, str) or not tenant or not isinstance(job_id, str) or not job_id:
        raise BadTask("the body needs tenant and job_id")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 0:
        raise BadTask("the body needs a chunk number")
    return Delivery(
        tenant=tenant,
        job_id=job_id,
        chunk=chunk,
        retry_count=_count(request, RETRY_HEADER),
        execution_count=_count(request, EXECUTION_HEADER),
    )


def _reply(report: ChunkReport) -> flask.Response:
    status = 503 if report.status == "retry" else 200
    response = flask.Response(json.dumps(asdict(report)), status=status, content_type="application/json")
    if report.retry_after_s is not None:
        response.headers["Retry-After"] = str(report.retry_after_s)
    return response


def handle(request: flask.Request) -> flask.Response:
    """Run the chunk a task names and answer Cloud Tasks."""
    logs.configure()
    if request.method != "POST":  # readiness probes and stray GETs: not a task, nothing to log
        return flask.Response(status=405, headers={"Allow": "POST"})
    logs.bind(function="batch_chunk", task=request.headers.get(TASK_NAME_HEADER, ""))
    try:
        try:
            delivery = parse(request)
        except BadTask as exc:
            log.error("not a chunk task: %s", exc)
            return flask.Response(
                json.dumps({"error": str(exc)}), status=400, content_type="application/json"
            )
        logs.bind(tenant=delivery.tenant, job_id=delivery.job_id)
        report = run_chunk(delivery)
        log.info(
            "chunk %d of %s: %s",
            delivery.chunk,
            delivery.job_id,
            report.status,
            extra={
                "fields": {
                    "chunk": delivery.chunk,
                    "retry_count": delivery.retry_count,
                    "execution_count": delivery.execution_count,
                    **asdict(report),
                }
            },
        )
        return _reply(report)
    finally:
        logs.clear()
