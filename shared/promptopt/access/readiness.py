"""GET /api/v1/health/ready (admin): can this deployment reach each backing service, and how fast.

`GET /api/v1/health` stays a liveness probe that touches nothing. Readiness makes one cheap call
per service, all at once, each under CHECK_TIMEOUT_S: a Firestore document read, the first topic's
metadata (Pub/Sub), the datasets bucket's metadata (Storage), the inference queue (Cloud Tasks)
and the signing-key secret (Secret Manager; locally the secrets stand-in, as there is no
emulator). 200 when every check passes, else 503 with the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from promptopt.config import settings

CHECK_TIMEOUT_S = 3.0

# The report is a plain dict in the shape of access.models.Readiness (tests/unit/test_views.py ties
# them): building the models would load pydantic on this function's cold start for nothing.
Check = dict[str, Any]


def _firestore() -> str | None:
    from promptopt.clients import firestore_client

    firestore_client().collection("_readiness").document("probe").get(timeout=CHECK_TIMEOUT_S)
    return None


def _pubsub() -> str | None:
    from promptopt import outbox, pubsub_rest

    topics = settings().topics
    if not topics:
        return "skipped: no topic is configured"
    pubsub_rest.get_topic(outbox.topic_path(min(topics)) or "", timeout_s=CHECK_TIMEOUT_S)
    return None


def _storage() -> str | None:
    from promptopt.clients import storage_client

    storage_client().get_bucket(settings().datasets_bucket, timeout=CHECK_TIMEOUT_S)
    return None


def _tasks() -> str | None:
    from promptopt import tasks_grpc

    queue = settings().queues.get("inference")
    if not queue:
        return "skipped: no inference queue is configured"
    tasks_grpc.get_queue(queue, timeout_s=CHECK_TIMEOUT_S)
    return None


def _secrets() -> str | None:
    from promptopt import secrets

    if settings().environment == "local":
        try:
            secrets.secret("signing_key")
        except secrets.SecretNotFoundError:
            return "skipped: local stand-in holds no signing key (the development key is used)"
        return None
    secrets._secret_manager(settings().project_id, "signing-key")  # the API itself, not the mount
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "firestore": _firestore,
    "pubsub": _pubsub,
    "storage": _storage,
    "tasks": _tasks,
    "secret_manager": _secrets,
}


def _check(service: str, status: str, latency_ms: float | None, detail: str | None = None) -> Check:
    """One backing service's line of the report (a `Check`)."""
    return {"service": service, "status": status, "latency_ms": latency_ms, "detail": detail}


def _timed(name: str, check: Callable[[], str | None]) -> Check:
    started = time.perf_counter()
    try:
        note = check()
    except Exception as exc:  # noqa: BLE001 - a failed check is the report, never a 500
        return _check(name, "failed", round((time.perf_counter() - started) * 1000, 1), type(exc).__name__)
    latency = round((time.perf_counter() - started) * 1000, 1)
    if note and note.startswith("skipped"):
        return _check(name, "skipped", latency, note)
    return _check(name, "ok", latency)


def readiness() -> dict[str, Any]:
    """Run every check at once; a check still running after its timeout counts as failed.

    A `Readiness`, as a plain dict.
    """
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readiness")
    futures = {name: pool.submit(_timed, name, check) for name, check in CHECKS.items()}
    wait(futures.values(), timeout=CHECK_TIMEOUT_S + 1)
    pool.shutdown(wait=False, cancel_futures=True)
    results = [
        f.result() if f.done() else _check(n, "failed", (CHECK_TIMEOUT_S + 1) * 1000, "timeout")
        for n, f in futures.items()
    ]
    healthy = all(c["status"] != "failed" for c in results)
    return {"status": "ready" if healthy else "degraded", "checks": results}
