"""The wrappers every entry point calls: `serve` (HTTP), `serve_event` (Pub/Sub, storage), `serve_task`."""

from typing import TYPE_CHECKING, Any

from promptopt.http.endpoint import Call, Reply, serve

if TYPE_CHECKING:
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

_EVENTS = frozenset(
    {"Delivery", "PermanentFailure", "TaskAttempt", "TaskOutcome", "serve_event", "serve_task"}
)


def __getattr__(name: str) -> Any:
    # The event and task wrappers load on first use: HTTP functions never need them (cold start).
    if name in _EVENTS:
        from promptopt.http import events

        return getattr(events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
