"""Pub/Sub messages that chain the steps: `batch-completed`, `evaluation-completed`.

Messages carry ids and a status only (never prompts or answers). Every consumer de-duplicates,
because push delivery is at-least-once and a publisher may publish again after a crash.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from promptopt.config import settings
from promptopt.http.events import decode_push

log = logging.getLogger(__name__)
__all__ = ["BATCH_COMPLETED", "EVALUATION_COMPLETED", "decode_push", "publish", "topic_path"]

BATCH_COMPLETED = "batch-completed"
EVALUATION_COMPLETED = "evaluation-completed"
_PUBLISH_TIMEOUT_S = 30.0


def topic_path(name: str) -> str | None:
    """The full topic name for a logical topic, or None when the deployment has none configured."""
    cfg = settings()
    topic = cfg.topics.get(name)
    if not topic:
        return None
    return topic if topic.startswith("projects/") else f"projects/{cfg.project_id}/topics/{topic}"


def publish(name: str, payload: dict[str, Any]) -> str | None:
    """Publish `payload` as JSON and wait for the server's id; None when the topic is not configured."""
    topic = topic_path(name)
    if topic is None:
        log.warning("topic %s is not configured (PROMPTOPT_TOPICS); message not sent", name)
        return None
    from promptopt.clients import publisher_client

    data = json.dumps(payload, separators=(",", ":")).encode()
    attributes = {k: str(v) for k, v in payload.items() if k in ("tenant", "job_id", "status")}
    message_id: str = publisher_client().publish(topic, data, **attributes).result(timeout=_PUBLISH_TIMEOUT_S)
    log.info("published %s %s", name, message_id, extra={"fields": {"topic": name, **attributes}})
    return message_id
