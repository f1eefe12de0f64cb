"""Lazily created, process-wide GCP clients.

functions-framework serves requests from several threads, so creation is guarded by a lock;
nothing is created at import time (cold start) and `reset` drops them between tests.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from promptopt.config import settings

if TYPE_CHECKING:
    from google.cloud import firestore

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _get(name: str, factory: Any) -> Any:
    client = _clients.get(name)
    if client is None:
        with _lock:
            client = _clients.get(name)
            if client is None:
                client = factory()
                _clients[name] = client
    return client


def firestore_client() -> firestore.Client:
    """The Firestore client (honours FIRESTORE_EMULATOR_HOST)."""

    def make() -> firestore.Client:
        from google.cloud import firestore

        cfg = settings()
        return firestore.Client(project=cfg.project_id, database=cfg.firestore_database)

    return _get("firestore", make)


def reset() -> None:
    """Drop every cached client (tests point them at fresh emulators)."""
    with _lock:
        _clients.clear()
