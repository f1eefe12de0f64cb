"""`serve_event` and `serve_task`: the wrappers every Pub/Sub, storage and Cloud Tasks entry point calls.

Each delivery is at-least-once, so the handler below them must be idempotent; the wrapper makes
the one decision every trigger needs, explicitly:

- a payload that does not parse is acknowledged with an ERROR log (redelivery cannot fix it);
- an event older than `max_age` is acknowledged (after `on_expired`, which records a final state,
  so the thing it was about never stays unfinished) with a WARNING log;
- `PermanentFailure` from the handler: the handler has recorded the outcome; acknowledged;
- any other exception propagates, so the platform redelivers (a transient failure retries). No
  blanket `except` here: catching everything would silently turn every outage into a lost message.
  On the subscription's last delivery attempt (Pub/Sub's `deliveryAttempt` reaches
  PROMPTOPT_MAX_DELIVERY_ATTEMPTS, after which the message is dead-lettered), `on_give_up` records
  a final state with the reason first, so what the message was about never stays unfinished.

Logs carry the function's name from its manifest and the event or task id.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ValidationError

from promptopt import logs, startup

log = logging.getLogger("promptopt.http.events")
M = TypeVar("M", bound=BaseModel)
# Pub/Sub keeps an unacknowledged message 7 days; Eventarc retries a storage event for 24 hours.
DEFAULT_MAX_AGE = timedelta(days=1)
DEFAULT_MAX_DELIVERY_ATTEMPTS = 10

RETRY_HEADER = "X-CloudTasks-TaskRetryCount"
EXECUTION_HEADER = "X-CloudTasks-TaskExecutionCount"
TASK_NAME_HEADER = "X-CloudTasks-TaskName"


class PermanentFailure(Exception):
    """Retrying cannot fix this delivery; the handler recorded the outcome, so acknowledge it."""


@dataclass(frozen=True)
class Delivery:
    """What is known about one delivery of an event."""

    id: str
    type: str
    time: datetime | None
    attempt: int | None = None  # Pub/Sub's deliveryAttempt (subscriptions with a dead-letter policy)

    def age(self, now: datetime | None = None) -> timedelta:
        """How long ago the event happened (zero when it carries no time)."""
        if self.time is None:
            return timedelta(0)
        return (now or datetime.now(UTC)) - self.time


def decode_push(data: Any) -> dict[str, Any]:
    """The JSON payload of a Pub/Sub message as a CloudEvent carries it (`{"message": {"data": b64}}`)."""
    message = data.get("message") if isinstance(data, dict) else None
    raw = message.get("data") if isinstance(message, dict) else None
    if not isinstance(raw, str | bytes):
        raise ValueError("the event holds no Pub/Sub message data")
    decoded = json.loads(base64.b64decode(raw))
    if not isinstance(decoded, dict):
        raise ValueError("the message data is not a JSON object")
    return decoded


def _event_time(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    if isinstance(raw, str) and raw:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _delivery_attempt() -> int | None:
    """Pub/Sub's deliveryAttempt from the raw push body (functions-framework drops it from the event)."""
    if not flask.has_request_context():
        return None
    body = flask.request.get_json(silent=True)
    attempt = body.get("deliveryAttempt") if isinstance(body, dict) else None
    return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None


def max_delivery_attempts() -> int:
    """The push subscriptions' maxDeliveryAttempts (Terraform's var.max_delivery_attempts)."""
    raw = os.environ.get("PROMPTOPT_MAX_DELIVERY_ATTEMPTS", "")
    return int(raw) if raw.isdigit() else DEFAULT_MAX_DELIVERY_ATTEMPTS


def serve_event(
    event: Any,
    handler: Callable[[M, Delivery], object],
    *,
    model: type[M],
    source: str,
    max_age: timedelta = DEFAULT_MAX_AGE,
    on_expired: Callable[[M, Delivery], None] | None = None,
    on_give_up: Callable[[M, Delivery, Exception], None] | None = None,
) -> None:
    """Handle one CloudEvent for the function whose main.py is `source` (pass `__file__`)."""
    # The manifest model loads only here: HTTP functions import this module for `decode_push`.
    from promptopt.manifest import PubsubTrigger, SchedulerTrigger, spec_for_main

    logs.configure()
    spec = spec_for_main(source)
    delivery = Delivery(
        id=str(event["id"]),
        type=str(event["type"]),
        time=_event_time(event.get("time")),
        attempt=_delivery_attempt(),
    )
    logs.bind(function=spec.name, event=delivery.id)
    try:
        try:
            raw = event.data
            if isinstance(spec.trigger, PubsubTrigger | SchedulerTrigger):
                raw = decode_push(raw)
            payload = model.model_validate(raw)
        except (ValueError, TypeError, ValidationError) as exc:
            log.error("malformed event acknowledged: %s", _short(exc))
            return
        if delivery.age() > max_age:
            if on_expired is not None:
                on_expired(payload, delivery)
            log.warning("event older than %s acknowledged without work", max_age)
            return
        try:
            outcome = handler(payload, delivery)
        except PermanentFailure as exc:
            log.error("permanent failure recorded and acknowledged: %s", exc)
            return
        except Exception as exc:
            last = delivery.attempt is not None and delivery.attempt >= max_delivery_attempts()
            if on_give_up is None or not last:
                raise  # redelivered (and dead-lettered after the last attempt)
            on_give_up(payload, delivery, exc)
            log.error(
                "gave up after %s deliveries; the outcome is recorded: %s", delivery.attempt, _short(exc)
            )
            return
        log.info("event handled: %s", outcome)
    finally:
        logs.clear()
        startup.resume()  # the instance has handled one event: collect garbage from here on


@dataclass(frozen=True)
class TaskAttempt:
    """Cloud Tasks' numbering of this attempt (`X-CloudTasks-*` headers)."""

    name: str
    retry_count: int  # attempts before this one, 0 on the first
    execution_count: int  # earlier attempts that got a response


@dataclass(frozen=True)
class TaskOutcome:
    """What a task handler did: 200 (done) or, with `retry`, 503 so Cloud Tasks tries again."""

    body: dict[str, Any]
    retry: bool = False
    retry_after_s: int | None = None


def _count(request: flask.Request, header: str) -> int:
    raw = request.headers.get(header, "0").strip() or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        raise ValueError(f"{header} is not a number") from None


def serve_task(
    request: flask.Request,
    handler: Callable[[M, TaskAttempt], TaskOutcome],
    *,
    model: type[M],
    source: str,
) -> flask.Response:
    """Handle one Cloud Tasks delivery: 200 done, 503 retry later, 400 not a task of ours, 405 not POST."""
    logs.configure()
    if request.method != "POST":  # readiness probes and stray GETs: not a task, nothing to log
        return flask.Response(status=405, headers={"Allow": "POST"})
    from promptopt.manifest import spec_for_main

    spec = spec_for_main(source)
    logs.bind(function=spec.name, task=request.headers.get(TASK_NAME_HEADER, ""))
    try:
        try:
            payload = model.model_validate_json(request.get_data() or b"null")
            attempt = TaskAttempt(
                name=request.headers.get(TASK_NAME_HEADER, ""),
                retry_count=_count(request, RETRY_HEADER),
                execution_count=_count(request, EXECUTION_HEADER),
            )
        except (ValueError, ValidationError) as exc:
            # Retrying cannot fix the body; 400 shows in the queue's metrics and ends the task.
            log.error("not a task of this function: %s", _short(exc))
            return _json({"error": "not a task of this function"}, 400)
        outcome = handler(payload, attempt)
        response = _json(outcome.body, 503 if outcome.retry else 200)
        if outcome.retry_after_s is not None:
            response.headers["Retry-After"] = str(outcome.retry_after_s)
        return response
    finally:
        logs.clear()
        startup.resume()  # the instance has handled one task: collect garbage from here on


def _json(body: dict[str, Any], status: int) -> flask.Response:
    return flask.Response(json.dumps(body), status=status, content_type="application/json")


def _short(exc: Exception) -> str:
    """An exception's kind and first line, short: payload values stay out of the logs."""
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} validation error(s) at " + ", ".join(
            ".".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors()[:5]
        )
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
