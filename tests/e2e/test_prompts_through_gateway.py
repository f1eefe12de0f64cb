"""Prompts as a user reaches them: real function processes behind the local gateway, real tokens."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable

import httpx
import pytest

pytestmark = pytest.mark.e2e


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tenant() -> str:
    return "e2e-" + uuid.uuid4().hex[:10]


def test_health_is_public(gateway: httpx.Client) -> None:
    r = gateway.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_prompt_lifecycle(gateway: httpx.Client, token_for: Callable[..., str], tenant: str) -> None:
    auth = bearer(token_for(tenant, "editor"))
    created = gateway.post(
        "/api/v1/prompts",
        headers={**auth, "Idempotency-Key": "k1"},
        json={"name": "qa", "output_prompt": "Q: {input}\nA:"},
    )
    assert created.status_code == 201, created.text
    pid = created.json()["prompt_id"]
    assert created.json()["created_by"] == "e2e-user"
    replay = gateway.post(
        "/api/v1/prompts",
        headers={**auth, "Idempotency-Key": "k1"},
        json={"name": "qa", "output_prompt": "Q: {input}\nA:"},
    )
    assert replay.json()["prompt_id"] == pid
    updated = gateway.put(
        f"/api/v1/prompts/{pid}",
        headers={**auth, "If-Match": created.headers["ETag"]},
        json={"system_prompt": "Think step by step."},
    )
    assert (updated.status_code, updated.json()["parent_id"]) == (200, f"{pid}@1")
    labelled = gateway.put(f"/api/v1/prompts/{pid}/labels/production", headers=auth, json={"version": 2})
    assert labelled.json()["labels"] == {"production": 2}
    got = gateway.get(f"/api/v1/prompts/{pid}", params={"label": "production"}, headers=auth)
    assert got.json()["system_prompt"] == "Think step by step."
    versions = gateway.get(f"/api/v1/prompts/{pid}/versions", headers=auth).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    listed = gateway.get("/api/v1/prompts", headers=auth).json()
    assert [p["prompt_id"] for p in listed["items"]] == [pid]


def test_concurrent_puts_one_winner(
    gateway: httpx.Client, token_for: Callable[..., str], tenant: str
) -> None:
    auth = bearer(token_for(tenant, "editor"))
    pid = gateway.post("/api/v1/prompts", headers=auth, json={"output_prompt": "{input}"}).json()["prompt_id"]

    def put(i: int) -> int:
        r = gateway.put(
            f"/api/v1/prompts/{pid}",
            headers={**auth, "If-Match": '"v1"'},
            json={"system_prompt": f"writer {i}"},
        )
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(put, range(8)))
    assert statuses == [200] + [412] * 7


def test_tenants_are_isolated_and_roles_enforced(
    gateway: httpx.Client, token_for: Callable[..., str], tenant: str
) -> None:
    owner = bearer(token_for(tenant, "admin"))
    pid = gateway.post("/api/v1/prompts", headers=owner, json={"output_prompt": "{input}"}).json()[
        "prompt_id"
    ]
    stranger = bearer(token_for(tenant + "-other", "admin"))
    assert gateway.get(f"/api/v1/prompts/{pid}", headers=stranger).status_code == 404
    assert gateway.get("/api/v1/prompts", headers=stranger).json()["items"] == []
    viewer = bearer(token_for(tenant, "viewer"))
    assert gateway.get(f"/api/v1/prompts/{pid}", headers=viewer).status_code == 200
    denied = gateway.put(
        f"/api/v1/prompts/{pid}", headers={**viewer, "If-Match": '"v1"'}, json={"system_prompt": "x"}
    )
    assert (denied.status_code, denied.json()["code"]) == (403, "role_too_low")


def test_a_forged_identity_header_is_ignored(
    gateway: httpx.Client, token_for: Callable[..., str], tenant: str
) -> None:
    from promptopt.auth import USERINFO_HEADER, encode_userinfo

    forged = {USERINFO_HEADER: encode_userinfo({"sub": "x", "tenant": tenant, "role": "admin"})}
    assert gateway.get("/api/v1/prompts", headers=forged).status_code == 401
    viewer = bearer(token_for(tenant, "viewer"))
    r = gateway.post("/api/v1/prompts", headers={**viewer, **forged}, json={"output_prompt": "{input}"})
    assert r.status_code == 403


def test_unknown_routes_and_methods(gateway: httpx.Client) -> None:
    assert gateway.get("/api/v1/nothing-here").status_code == 404
    assert gateway.patch("/api/v1/health").status_code == 405


def test_absolute_form_request_targets_are_routed_by_path(stack: object) -> None:
    """`GET http://other-host/api/v1/health` must be routed by its path, never glued onto a backend URL."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(stack.gateway_url)  # type: ignore[attr-defined]
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            b"GET http://evil.example/api/v1/health HTTP/1.1\r\n"
            b"Host: evil.example\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    assert status < 500, reply[:300]
