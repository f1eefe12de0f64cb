"""Per-tenant rate limits on the expensive operations, enforced across every instance.

A sliding-window log in Firestore, with no document written twice: each admitted request creates
its own small event document under the limit's scope, then counts the events of the last window
(one `count()` aggregation, billed one read per 1,000 events). Over the limit, the request deletes
its own event and is refused, so concurrent requests at the edge can only be refused together,
never admitted past the limit. There is no counter document to contend on (the Firestore limit
of about one sustained write per second per document, and the emulator's failing concurrent
transactions, both rule one out), and the count is exact across instances, which per-instance
buckets are not (they bound a tenant only to limit x max_instances).

A refused scope is remembered by the instance until its window frees a slot, so a client that
keeps calling while refused costs no Firestore operation at all. Events expire through a TTL
policy on `expires_at` (terraform/modules/data).

Cost: one create and one aggregation per admitted request (the added latency at p50 is measured by
`scripts/bench/rate-limit`); a refusal adds a delete and one small query.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from promptopt.access import paths
from promptopt.config import settings
from promptopt.errors import TooManyRequests


class Limit(NamedTuple):
    """At most `limit` requests in any `window_s` seconds."""

    limit: int
    window_s: int


# Per tenant unless noted. Editable per deployment with PROMPTOPT_RATE_LIMITS (JSON).
DEFAULT_LIMITS: dict[str, Limit] = {
    "inference": Limit(120, 60),  # POST /inference/complete: synchronous model calls
    "jobs": Limit(30, 60),  # POST /inference/batch and /inference/evaluate
    "runs": Limit(10, 60),  # POST /experiments/{id}/start
    "token_exchange": Limit(60, 60),  # POST /auth/token, per tenant of the key
    "token_failures": Limit(10, 300),  # failed exchanges per client address (no tenant is known)
}


class Decision(NamedTuple):
    """The outcome of an admitted request, for the RateLimit headers."""

    name: str
    limit: int
    window_s: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """RateLimit-Limit/-Remaining/-Reset and RateLimit-Policy (IETF httpapi drafts)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(max(0, self.reset_s)),
            "RateLimit-Policy": f'{self.limit};w={self.window_s};comment="{self.name}"',
        }


def limit_for(name: str) -> Limit:
    """The configured limit called `name`."""
    override = settings().rate_limits.get(name)
    if override:
        return Limit(int(override["limit"]), int(override.get("window_s", 60)))
    if name not in DEFAULT_LIMITS:
        raise KeyError(f"no rate limit called {name!r}")
    return DEFAULT_LIMITS[name]


def _scope(name: str, key: str) -> str:
    # Document ids cannot hold "/" and should not leak what they count (a client address).
    return f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


_lock = threading.Lock()
_blocked: dict[str, float] = {}  # scope -> monotonic time its window frees a slot


def _refuse(name: str, rule: Limit, retry_after_s: float) -> TooManyRequests:
    wait = max(1, math.ceil(retry_after_s))
    decision = Decision(name, rule.limit, rule.window_s, 0, wait)
    return TooManyRequests(
        f"rate limit {name}: at most {rule.limit} requests in {rule.window_s} s; retry in {wait} s",
        retry_after_s=wait,
        limit=rule.limit,
        window_s=rule.window_s,
        headers=decision.headers(),
    )


def _check_blocked(scope: str, name: str, rule: Limit) -> None:
    until = _blocked.get(scope)
    if until is None:
        return
    left = until - time.monotonic()
    if left > 0:
        raise _refuse(name, rule, left)
    with _lock:
        _blocked.pop(scope, None)


def _block(scope: str, seconds: float) -> None:
    with _lock:
        if len(_blocked) > 10_000:
            _blocked.clear()
        _blocked[scope] = time.monotonic() + seconds


def _window_count(events: Any, since: datetime) -> int:
    from google.cloud.firestore_v1.aggregation import AggregationQuery
    from google.cloud.firestore_v1.base_query import FieldFilter

    aggregation: Any = AggregationQuery(events.where(filter=FieldFilter("at", ">", since)))
    aggregation.count(alias="n")
    return sum(int(item.value) for result in aggregation.get() for item in result)


def _rank(events: Any, since: datetime, event_id: str, committed: Any) -> int:
    """Where this request's event stands among the window's, in commit order (1 = first).

    Only read when the window holds more than the limit (a burst). Counting alone would make every
    request of a burst that wrote before any had counted back out, admitting none; ranking admits
    the `limit` earliest, whose events stay, so a later request always counts them.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    window = events.where(filter=FieldFilter("at", ">", since)).select([]).stream()
    return sum(1 for e in window if (e.create_time, e.id) <= (committed, event_id))


def _retry_after(events: Any, since: datetime, now: datetime, over: int, rule: Limit) -> float:
    """Seconds until enough of the window's oldest events leave it for one more request."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        events.where(filter=FieldFilter("at", ">", since)).order_by("at").offset(max(0, over - 1)).limit(1)
    )
    for snapshot in query.stream():
        at = snapshot.get("at")
        return max(1.0, (at + timedelta(seconds=rule.window_s) - now).total_seconds())
    return float(rule.window_s)


def _event(now: datetime, rule: Limit) -> dict[str, Any]:
    return {"at": now, "expires_at": now + timedelta(seconds=rule.window_s + 3600)}


def admit(name: str, key: str) -> Decision:
    """Count one request of `key` (a tenant) against limit `name`; 429 TooManyRequests when over."""
    rule = limit_for(name)
    scope = _scope(name, key)
    _check_blocked(scope, name, rule)
    events = paths.rate_events(scope)
    now = datetime.now(UTC)
    since = now - timedelta(seconds=rule.window_s)
    mine = events.document(secrets.token_hex(10))
    written = mine.create(_event(now, rule))
    seen = _window_count(events, since)
    if seen <= rule.limit or _rank(events, since, mine.id, written.update_time) <= rule.limit:
        return Decision(name, rule.limit, rule.window_s, max(0, rule.limit - seen), rule.window_s)
    mine.delete()
    wait = _retry_after(events, since, now, seen - rule.limit, rule)
    _block(scope, wait)
    raise _refuse(name, rule, wait)


def check(name: str, key: str) -> None:
    """429 when `key` has already used up limit `name` (counts without recording; see `note`)."""
    rule = limit_for(name)
    scope = _scope(name, key)
    _check_blocked(scope, name, rule)
    events = paths.rate_events(scope)
    now = datetime.now(UTC)
    since = now - timedelta(seconds=rule.window_s)
    seen = _window_count(events, since)
    if seen >= rule.limit:
        wait = _retry_after(events, since, now, seen - rule.limit + 1, rule)
        _block(scope, wait)
        raise _refuse(name, rule, wait)


def note(name: str, key: str) -> None:
    """Record one event of `key` against limit `name` (a failed exchange, for `check`)."""
    rule = limit_for(name)
    now = datetime.now(UTC)
    paths.rate_events(_scope(name, key)).document(secrets.token_hex(10)).create(_event(now, rule))


def reset() -> None:
    """Forget remembered refusals (tests)."""
    with _lock:
        _blocked.clear()
