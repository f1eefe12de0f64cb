"""A transactional outbox for Pub/Sub: a state change and the message announcing it commit together.

Publishing straight after a state change loses the message when Pub/Sub is unavailable at that
moment (the state has moved on, nothing retries the publish, and the next step never starts). So
a message is first *recorded* as a document in the same atomic batch as the change it announces,
then published at once; it is marked sent when Pub/Sub acknowledges it. What was not acknowledged
stays due and `redrive_outbox` (a scheduler tick) publishes it again until it is.

    batch = client.batch()
    batch.update(job, {...}, option=...)          # the state change
    outbox.record(batch, message)                 # and its message, atomically
    batch.commit()
    outbox.deliver([message])                     # best effort now; redrive_outbox later

Document ids derive from (topic, key), so recording the same message twice leaves one document.
Delivery is at-least-once (a redrive may race an inline publish): consumers de-duplicate.

    outbox/{sha256(topic, key)}    topic, key, payload, state (pending|sent|handled), due_at
                                   (absent once sent or handled: only due messages are in its
                                   index), attempts, last_error

A message whose consumer's work the writer did itself, in process (see `handled`), is not
published at all: it stays recorded until then, so a crash before that work is done still leaves
it to the redrive.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.config import settings

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference, WriteBatch

log = logging.getLogger(__name__)

COLLECTION = "outbox"
# A message recorded now is left to its writer's inline publish for this long before a redrive
# takes it (a redrive racing the inline publish would only send a harmless duplicate).
GRACE = timedelta(seconds=30)
INLINE_TIMEOUT_S = 10.0
REDRIVE_TIMEOUT_S = 30.0
_MAX_BACKOFF = timedelta(minutes=10)
_ATTRIBUTES = ("tenant", "job_id", "status")
_DONE = ("sent", "handled")  # states that need no (further) publish


class TopicNotConfigured(RuntimeError):
    """The deployment names no topic for a logical topic (PROMPTOPT_TOPICS)."""


class Message(NamedTuple):
    """One message to publish: a logical topic, a de-duplication key, and a small JSON payload."""

    topic: str
    key: str
    payload: dict[str, Any]

    @property
    def doc_id(self) -> str:
        """The outbox document's id: the same message always maps to the same document."""
        return hashlib.sha256(f"{self.topic}\0{self.key}".encode()).hexdigest()[:40]


@dataclass
class RedriveReport:
    """What one redrive did."""

    sent: int = 0
    failed: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def ref(message: Message) -> DocumentReference:
    """The message's outbox document."""
    from promptopt.clients import firestore_client

    return firestore_client().collection(COLLECTION).document(message.doc_id)


def _document(message: Message, now: datetime) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "key": message.key,
        "payload": message.payload,
        "state": "pending",
        "attempts": 0,
        "created_at": now,
        "due_at": now + GRACE,
        "sent_at": None,
        "message_id": None,
        "last_error": None,
    }


def record(batch: WriteBatch, message: Message) -> None:
    """Add the message to `batch` (committed with the state change it announces)."""
    batch.set(ref(message), _document(message, _now()))


def ensure(message: Message) -> None:
    """Record the message unless it already is (create-if-absent), then deliver it if still due.

    For a step that finds its state change already made (a retry after a crash): the message was
    recorded with the change, or, for changes made before the outbox existed, is recorded now.
    """
    from google.api_core import exceptions as gexc

    doc = ref(message)
    try:
        doc.create(_document(message, _now()))
    except (gexc.AlreadyExists, gexc.Conflict):
        if (doc.get().to_dict() or {}).get("state") in _DONE:
            return
    deliver([message])


def topic_path(name: str) -> str | None:
    """The full topic name for a logical topic, or None when the deployment has none configured."""
    cfg = settings()
    topic = cfg.topics.get(name)
    if not topic:
        return None
    return topic if topic.startswith("projects/") else f"projects/{cfg.project_id}/topics/{topic}"


def publish_now(name: str, payload: dict[str, Any], *, timeout_s: float = REDRIVE_TIMEOUT_S) -> str:
    """Publish `payload` as JSON and wait for the server's id (no outbox; raises on failure)."""
    topic = topic_path(name)
    if topic is None:
        raise TopicNotConfigured(f"topic {name} is not configured (PROMPTOPT_TOPICS)")
    from promptopt import pubsub_rest

    data = json.dumps(payload, separators=(",", ":")).encode()
    attributes = {k: str(v) for k, v in payload.items() if k in _ATTRIBUTES}
    message_id = pubsub_rest.publish(topic, data, attributes, timeout_s=timeout_s)
    log.info("published %s %s", name, message_id, extra={"fields": {"topic": name, **attributes}})
    return message_id


def _backoff(attempts: int) -> timedelta:
    return min(_MAX_BACKOFF, timedelta(seconds=10 * 2 ** max(0, attempts - 1)))


def _send(
    doc: DocumentReference, topic: str, payload: dict[str, Any], attempts: int, timeout_s: float
) -> bool:
    """Publish one recorded message and note the outcome on its document; True when acknowledged."""
    from google.api_core import exceptions as gexc
    from google.cloud.firestore import DELETE_FIELD

    try:
        message_id = publish_now(topic, payload, timeout_s=timeout_s)
    except Exception as exc:  # noqa: BLE001 - any publish failure leaves the message due, by design
        now = _now()
        log.warning(
            "publishing %s failed (attempt %d); the outbox keeps it for a redrive: %s",
            topic,
            attempts + 1,
            exc,
            extra={"fields": {"topic": topic, "outbox_id": doc.id}},
        )
        try:
            doc.update(
                {
                    "attempts": attempts + 1,
                    "last_error": f"{type(exc).__name__}: {exc}"[:500],
                    "due_at": now + _backoff(attempts + 1),
                }
            )
        except gexc.GoogleAPIError:
            log.warning("could not note the failed publish on %s", doc.id)
        return False
    try:
        doc.update(
            {
                "state": "sent",
                "sent_at": _now(),
                "message_id": message_id,
                "attempts": attempts + 1,
                "due_at": DELETE_FIELD,
            }
        )
    except gexc.GoogleAPIError:  # sent, but not noted: a redrive sends a duplicate (consumers dedupe)
        log.warning("published %s but could not mark %s sent", topic, doc.id)
    return True


def deliver(messages: Iterable[Message], *, timeout_s: float | None = None) -> int:
    """Publish recorded messages now; failures stay in the outbox for `redrive_outbox`. Never raises."""
    sent = 0
    for message in messages:
        sent += _send(ref(message), message.topic, message.payload, 0, timeout_s or INLINE_TIMEOUT_S)
    return sent


def redrive_outbox(
    *, limit: int = 100, now: datetime | None = None, timeout_s: float | None = None
) -> RedriveReport:
    """Publish up to `limit` recorded messages that are due (unsent past their grace or backoff).

    Safe to run from several ticks at once (a message may then be sent twice; consumers dedupe).
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.clients import firestore_client

    at = now or _now()
    query = (
        firestore_client()
        .collection(COLLECTION)
        .where(filter=FieldFilter("due_at", "<=", at))
        .order_by("due_at")
        .limit(limit)
    )
    report = RedriveReport()
    for snapshot in query.stream():
        data = snapshot.to_dict() or {}
        if data.get("state") in _DONE:
            continue
        ok = _send(
            snapshot.reference,
            str(data.get("topic")),
            dict(data.get("payload") or {}),
            int(data.get("attempts") or 0),
            timeout_s or REDRIVE_TIMEOUT_S,
        )
        if ok:
            report.sent += 1
        else:
            report.failed += 1
    if report.sent or report.failed:
        log.info("outbox redrive: %d sent, %d still due", report.sent, report.failed)
    return report


def pending(message: Message) -> bool:
    """Whether the message is recorded and not yet acknowledged."""
    data = ref(message).get().to_dict()
    return data is not None and data.get("state") not in _DONE


def handled(messages: Iterable[Message]) -> None:
    """Retire recorded messages whose consumers' work this process has done: never published.

    One commit for all of them. If it fails, the messages stay due and the redrive publishes them
    (their consumers then find the work done): never raises.
    """
    from google.api_core import exceptions as gexc
    from google.cloud.firestore import DELETE_FIELD

    from promptopt.clients import firestore_client

    batch = firestore_client().batch()
    for message in messages:
        batch.update(ref(message), {"state": "handled", "handled_at": _now(), "due_at": DELETE_FIELD})
    try:
        batch.commit()
    except gexc.GoogleAPIError:
        log.warning("could not retire handled messages; the redrive will publish them")
