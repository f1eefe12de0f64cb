"""The wrappers every entry point calls: `serve` (HTTP), `serve_event` (Pub/Sub, storage), `serve_task`."""

from promptopt.http.endpoint import Call, Reply, serve
from promptopt.http.events import (
    Delivery,
    PermanentFailure,
    TaskAttempt,
    TaskOutcome,
    serve_event,
    serve_task,
)

__all__ = [
    "Call",
    "Delivery",
    "PermanentFailure",
    "Reply",
    "TaskAttempt",
    "TaskOutcome",
    "serve",
    "serve_event",
    "serve_task",
]
