"""Pub/Sub over its REST API: publish one message and wait for its id; read a topic's metadata.

Written by hand rather than through google-cloud-pubsub's PublisherClient for cold start: importing
and creating that client costs 70-100 ms of CPU (gRPC stubs, OpenTelemetry, a batching thread),
about a fifth of a bare Firestore function's whole start, while every publisher here sends one
message and waits for its id, so the client's batching buys nothing. These calls ride on requests
and google-auth, which the Firestore client has already loaded by the time anything publishes.
The emulator serves the same REST API (PUBSUB_EMULATOR_HOST, plain HTTP, no credentials), so the
tests run this very code.

Transient failures (429, 5xx, a dropped connection) are retried with backoff inside the caller's
deadline, as the client library's default publish retry does; what still fails raises, and the
outbox keeps the message for a redrive.
"""

from __future__ import annotations

import base64
from typing import Any

from promptopt.clients import pubsub_session
from promptopt.rest_calls import RestError, send


class PubSubError(RestError):
    """Pub/Sub answered with an error, or could not be reached before the deadline."""


def _call(method: str, path: str, body: dict[str, Any] | None, timeout_s: float) -> dict[str, Any]:
    """One API call, retried on transient failures until `timeout_s` has passed."""
    base, session = pubsub_session()
    response = send(session, method, f"{base}/v1/{path}", json=body, timeout_s=timeout_s, error=PubSubError)
    answer: dict[str, Any] = response.json() if response.content else {}
    return answer


def publish(topic: str, data: bytes, attributes: dict[str, str], *, timeout_s: float) -> str:
    """Publish one message to `topic` (projects/P/topics/T) and answer the server's message id."""
    message: dict[str, Any] = {"data": base64.b64encode(data).decode("ascii")}
    if attributes:
        message["attributes"] = attributes
    answer = _call("POST", f"{topic}:publish", {"messages": [message]}, timeout_s)
    ids = answer.get("messageIds") or []
    if len(ids) != 1:
        raise PubSubError(f"publish to {topic}: expected one message id, got {answer!r:.200}")
    return str(ids[0])


def get_topic(topic: str, *, timeout_s: float) -> dict[str, Any]:
    """The topic's metadata (raises PubSubError with status 404 when it does not exist)."""
    return _call("GET", topic, None, timeout_s)
