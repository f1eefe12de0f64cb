"""The Python client against the real function apps, in-process, on the emulators.

The CLI's `LocalCloud` (tests/integration/cli/conftest.py) plays the gateway, storage and the event
plumbing; the client runs on it as its httpx transport. `KeyExchange` stands in for
POST /api/v1/auth/token (API keys are not part of this checkout yet): it answers the published
contract ({"api_key"} -> {"token", "token_type", "expires_in", "tenant", "role"}, 401
invalid_api_key) with tokens LocalCloud accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from promptopt.client import Client
from promptopt.client import retries as client_retries
from promptopt.client import waiting as client_waiting
from tests.integration.cli.conftest import (  # noqa: F401 - fixtures
    API_URL,
    LocalCloud,
    _fast,
    batch_infra,
    batch_settings,
    cli,
    cloud,
    datasets_bucket,
    run_topics,
)
from tests.support import new_tenant

TOKEN_PATH = "/api/v1/auth/token"


class KeyExchange(httpx.BaseTransport):
    """LocalCloud with a token exchange for the API keys in `keys` (secret -> (tenant, role))."""

    def __init__(self, local: LocalCloud, keys: dict[str, tuple[str, str]], expires_in: int = 3600) -> None:
        self.cloud, self.keys, self.expires_in = local, keys, expires_in
        self.issued: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != TOKEN_PATH:
            return self.cloud.handle_request(request)
        assert request.method == "POST"
        assert "authorization" not in request.headers  # the key is the credential
        secret = json.loads(request.read()).get("api_key")
        if secret not in self.keys:
            problem = {
                "type": "about:blank",
                "title": "Unauthorized",
                "status": 401,
                "detail": "the API key is unknown, revoked or expired",
                "code": "invalid_api_key",
            }
            return httpx.Response(401, json=problem, headers={"Content-Type": "application/problem+json"})
        tenant, role = self.keys[secret]
        token = self.cloud.token(tenant, role)
        self.issued.append(token)
        body = {
            "token": token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "tenant": tenant,
            "role": role,
        }
        return httpx.Response(200, json=body)


@pytest.fixture(autouse=True)
def _fast_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_retries, "RETRY_BACKOFF_S", (0.0,))
    monkeypatch.setattr(client_waiting, "POLL_INTERVALS_S", (0.0,))
    monkeypatch.delenv("PROMPTOPT_API_KEY", raising=False)


@pytest.fixture
def tenant() -> str:
    return new_tenant()


@pytest.fixture
def client(cloud: LocalCloud, tenant: str) -> Iterator[Client]:  # noqa: F811 - the fixture
    """A client of one fresh tenant, as its admin."""
    with Client(API_URL, token=cloud.token(tenant, "admin"), transport=cloud) as made:
        yield made
