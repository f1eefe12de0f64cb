"""Structured JSON logs that Cloud Logging parses (severity, trace, labels).

Context (trace, function, tenant) lives in contextvars so concurrent requests on gunicorn
threads never see each other's values. Tokens and prompt bodies are never logged at INFO.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from promptopt.config import settings

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)
_labels: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("labels", default=None)
_configured = False
_lock = threading.Lock()


class JsonFormatter(logging.Formatter):
    """One JSON object per line in Cloud Logging's structured format."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = f"projects/{settings().project_id}/traces/{trace}"
        labels = _labels.get()
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure() -> None:
    """Install the JSON handler on the root logger once per process."""
    global _configured
    if _configured:
        return
    with _lock:
        if _configured:
            return
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.handlers = [handler]
        root.setLevel(settings().log_level)
        _configured = True


def bind(*, trace: str | None = None, **labels: str) -> None:
    """Set the trace id and labels for log records emitted by this request."""
    if trace is not None:
        _trace.set(trace)
    current = dict(_labels.get() or {})
    current.update({k: v for k, v in labels.items() if v})
    _labels.set(current)


def clear() -> None:
    """Forget the request context (called when a request ends)."""
    _trace.set(None)
    _labels.set(None)


def trace_from_header(value: str | None) -> str | None:
    """The trace id from X-Cloud-Trace-Context (`TRACE/SPAN;o=1`) or traceparent."""
    if not value:
        return None
    if value.startswith("00-") and value.count("-") >= 3:  # W3C traceparent
        return value.split("-")[1]
    return value.split("/", 1)[0] or None
