"""Idempotency-Key for POST: the same key and body replay the first response, never a second create.

A key is first *reserved* with a create-if-absent write, so two concurrent requests with one key
cannot both run; the loser gets 409 until the first finishes (or its lease lapses after a crash).
Only successful responses are stored: after an error the key is released so a corrected retry runs.
Records expire through a Firestore TTL policy on `expires_at`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc

from promptopt.config import settings
from promptopt.errors import Conflict, InvalidRequest, Unprocessable
from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    """A response recorded under a key."""

    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Reservation:
    """A key this request holds while it runs."""

    ref: DocumentReference


def fingerprint(method: str, path: str, body: Any) -> str:
    """Hash of what makes two requests "the same" (body compared as parsed JSON)."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _ref(tenant: str, function: str, key: str) -> DocumentReference:
    doc_id = hashlib.sha256(f"{function}\0{key}".encode()).hexdigest()
    return tenant_collection(tenant, "idempotency").document(doc_id)


def begin(*, tenant: str, function: str, key: str, request_hash: str) -> Reservation | StoredResponse:
    """Reserve the key, or return the response already recorded for it."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters", code="invalid_idempotency_key"
        )
    cfg = settings()
    ref = _ref(tenant, function, key)
    now = datetime.now(UTC)
    record = {
        "state": "pending",
        "request_hash": request_hash,
        "lease_until": now + timedelta(seconds=cfg.idempotency_lease_s),
        "expires_at": now + timedelta(seconds=cfg.idempotency_ttl_s),
    }
    try:
        ref.create(record)
        return Reservation(ref)
    except (gexc.AlreadyExists, gexc.Conflict):
        pass
    snapshot = ref.get()
    existing = snapshot.to_dict() or {}
    if not snapshot.exists:  # released between our create and get: try once more
        try:
            ref.create(record)
        except (gexc.AlreadyExists, gexc.Conflict):
            raise Conflict(
                "a request with this Idempotency-Key is still being processed; retry shortly",
                code="idempotency_in_progress",
            ) from None
        return Reservation(ref)
    expires_at = existing.get("expires_at")
    if expires_at is not None and expires_at <= now:
        # Past its replay window (TTL deletion lags by up to a day): the key is free again.
        return _take_over(ref, snapshot, record)
    if existing.get("request_hash") != request_hash:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body",
            code="idempotency_key_reused",
        )
    if existing.get("state") == "done":
        return StoredResponse(
            status=int(existing["status"]), body=existing["body"], headers=dict(existing.get("headers") or {})
        )
    lease_until = existing.get("lease_until")
    if lease_until is not None and lease_until > now:
        raise Conflict(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_in_progress",
        )
    # The first holder's lease lapsed (it crashed): take over only if nobody else did meanwhile.
    return _take_over(ref, snapshot, record)


def _take_over(ref: DocumentReference, snapshot: Any, record: dict[str, Any]) -> Reservation:
    """Replace a stale record, unless another request changed it since we read it."""
    from google.cloud.firestore import DELETE_FIELD

    fresh = {**record, "status": DELETE_FIELD, "body": DELETE_FIELD, "headers": DELETE_FIELD}
    try:
        ref.update(fresh, option=ref._client.write_option(last_update_time=snapshot.update_time))
    except (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted):
        raise Conflict(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_in_progress",
        ) from None
    return Reservation(ref)


def complete(reservation: Reservation, response: StoredResponse) -> None:
    """Record the successful response for replay."""
    reservation.ref.update(
        {"state": "done", "status": response.status, "body": response.body, "headers": response.headers}
    )


def release(reservation: Reservation) -> None:
    """Forget the key after a failed request so that a retry runs again."""
    reservation.ref.delete()
