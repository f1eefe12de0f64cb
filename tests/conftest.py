"""Fixtures shared by every tier. Emulators are real processes started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from promptopt import clients, config
from tests.support import claims_header, load_app, new_tenant

PROJECT = "promptopt-test"
TEST_QUEUES = ("inference",)


@pytest.fixture(scope="session")
def emulator_env() -> Iterator[dict[str, str]]:
    """Firestore (and friends) emulators for the whole session; the env points clients at them.

    Firestore, Pub/Sub, Storage and Tasks start together (~2.5 s). Emulators already named by
    FIRESTORE_EMULATOR_HOST (and the others' variables) are reused (quicker edit-test loops).
    """
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
        config.reset()
        clients.reset()
        yield {"FIRESTORE_EMULATOR_HOST": os.environ["FIRESTORE_EMULATOR_HOST"]}
        return
    from promptopt.local.emulators import ALL_EMULATORS, Emulators

    with Emulators(which=ALL_EMULATORS, project=PROJECT, queues=TEST_QUEUES) as emulators:
        saved = {k: os.environ.get(k) for k in emulators.env}
        os.environ.update(emulators.env)
        config.reset()
        clients.reset()
        yield dict(emulators.env)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.reset()
        clients.reset()


@pytest.fixture
def tenant() -> str:
    """A fresh tenant for this test."""
    return new_tenant()


class Api:
    """In-process clients for every function, called as the gateway would call them."""

    def __init__(self) -> None:
        self._clients: dict[str, FlaskClient] = {}

    def client(self, function: str) -> FlaskClient:
        if function not in self._clients:
            self._clients[function] = load_app(function).test_client()
        return self._clients[function]

    def call(
        self,
        function: str,
        method: str,
        path: str,
        *,
        tenant: str | None = None,
        role: str = "admin",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = dict(headers or {})
        if tenant is not None:
            sent.update(claims_header(tenant, role))
        return self.client(function).open(path, method=method, headers=sent, **kwargs)


@pytest.fixture(scope="session")
def api(emulator_env: dict[str, str]) -> Api:
    """Every function's app, sharing the session's emulators."""
    return Api()
