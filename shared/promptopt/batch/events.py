"""Pub/Sub messages that chain the steps: `batch-completed`, `evaluation-completed`.

Messages carry ids and a status only (never prompts or answers). Every consumer de-duplicates,
because push delivery is at-least-once and the outbox (`promptopt.outbox`) may publish a message
again after a crash or a redrive.
"""

from __future__ import annotations

import logging
from typing import Any

from promptopt import outbox
from promptopt.http.events import decode_push

log = logging.getLogger(__name__)
__all__ = [
    "BATCH_COMPLETED",
    "EVALUATION_COMPLETED",
    "completed",
    "decode_push",
    "evaluated",
    "publish",
    "topic_path",
]

BATCH_COMPLETED = "batch-completed"
EVALUATION_COMPLETED = "evaluation-completed"


def topic_path(name: str) -> str | None:
    """The full topic name for a logical topic, or None when the deployment has none configured."""
    return outbox.topic_path(name)


def publish(name: str, payload: dict[str, Any]) -> str | None:
    """Publish `payload` now, without the outbox; None when the topic is not configured.

    State changes announce themselves through `outbox` instead (see `completed`, `evaluated`).
    """
    if topic_path(name) is None:
        log.warning("topic %s is not configured (PROMPTOPT_TOPICS); message not sent", name)
        return None
    return outbox.publish_now(name, payload)


def completed(tenant: str, job_id: str, status: str) -> outbox.Message:
    """`batch-completed` for a job whose rows are all terminal (one per job: its key is the job)."""
    return outbox.Message(
        BATCH_COMPLETED, f"{tenant}/{job_id}", {"tenant": tenant, "job_id": job_id, "status": status}
    )


def evaluated(tenant: str, job_id: str, status: str, owner: dict[str, Any] | None = None) -> outbox.Message:
    """`evaluation-completed` for a job whose evaluation step finished (one per job).

    A job an experiment run owns names the run, so the message advances it.
    """
    payload: dict[str, Any] = {"tenant": tenant, "job_id": job_id, "status": status}
    if owner and owner.get("run_id"):
        payload |= {"experiment_id": owner["experiment_id"], "run_id": owner["run_id"]}
    return outbox.Message(EVALUATION_COMPLETED, f"{tenant}/{job_id}", payload)
