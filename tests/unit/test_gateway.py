"""The local API Gateway: routing, the token matrix, claim forwarding and backend failures."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from multidict import CIMultiDict

from promptopt.auth import USERINFO_HEADER, decode_userinfo
from promptopt.http.answer_models import Problem
from promptopt.local import dev_issuer
from promptopt.local.gateway import MAX_REQUEST_BYTES, create_app
from promptopt.manifest import repo_root
from promptopt.tooling import openapi
from tests.unit.test_gateway_refusals import GatewayTestServer

ISSUER = dev_issuer.DEV_ISSUER
AUDIENCE = dev_issuer.DEV_AUDIENCE
SECURED = "/api/v1/prompts"
PUBLIC = "/api/v1/health"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _dev_issuer_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_DEV_ISSUER_URL", raising=False)
    monkeypatch.delenv("PROMPTOPT_DEV_AUDIENCE", raising=False)


@pytest.fixture(scope="module")
def issuer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer")


@pytest.fixture(scope="module")
def other_issuer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("other-issuer")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return openapi.build_spec()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 600, "tenant": "acme",
            "role": "editor", **overrides}  # fmt: skip


def _kid(issuer_dir: Path) -> str:
    return str(dev_issuer.jwks(issuer_dir)["keys"][0]["kid"])


async def _echo(request: web.Request) -> web.Response:
    if request.path == "/slow":
        await asyncio.sleep(2)
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path_qs": request.path_qs,
            "headers": {k: v for k, v in request.headers.items()},
            "body": body.decode(),
        },
        headers={"ETag": '"v1"', "X-Backend": "echo"},
    )


@asynccontextmanager
async def gateway(
    spec: dict[str, Any], issuer_dir: Path, backend_url: str | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    """The gateway in-process, every operation pointed at one echo backend (or at backend_url)."""
    backend = web.Application()
    backend.router.add_route("*", "/{tail:.*}", _echo)
    async with TestServer(backend) as server:
        url = backend_url or str(server.make_url("")).rstrip("/")
        names = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
        app = create_app(spec, dict.fromkeys(names, url), dev_issuer.jwks(issuer_dir), ISSUER, [AUDIENCE])
        async with TestClient(GatewayTestServer(app)) as client:
            yield client


def call(
    spec: dict[str, Any],
    issuer_dir: Path,
    method: str,
    path: str,
    *,
    backend_url: str | None = None,
    **kwargs: Any,
) -> tuple[int, Mapping[str, str], Any]:
    async def go() -> tuple[int, Mapping[str, str], Any]:
        async with gateway(spec, issuer_dir, backend_url) as client:
            response = await client.request(method, path, **kwargs)
            text = await response.text()
            return response.status, CIMultiDict(response.headers), json.loads(text) if text else None

    result: tuple[int, Mapping[str, str], Any] = run(go())
    return result


def assert_problem(status: int, headers: Mapping[str, str], body: Any, expected: int) -> Problem:
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/problem+json")
    problem = Problem.model_validate(body)
    assert problem.status == expected
    return problem


# --- routing -------------------------------------------------------------------------------------


def test_unknown_path_is_404(spec: dict[str, Any], issuer_dir: Path) -> None:
    for path in ("/nope", "/api/v1/prompts/", "/api/v1/prompts/a/b", "/API/v1/health"):
        assert_problem(*call(spec, issuer_dir, "GET", path), 404)


def test_wrong_method_is_405_with_allow(spec: dict[str, Any], issuer_dir: Path) -> None:
    status, headers, body = call(spec, issuer_dir, "DELETE", SECURED)
    assert_problem(status, headers, body, 405)
    assert headers["Allow"] == "GET, POST"


def test_path_templates_match_whole_segments(spec: dict[str, Any], issuer_dir: Path) -> None:
    token = dev_issuer.mint_token(tenant="acme", role="viewer", issuer_dir=issuer_dir)
    status, _, body = call(
        spec, issuer_dir, "GET", "/api/v1/prompts/p%2F1/versions?page_size=5",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert status == 200
    assert body["path_qs"] == "/api/v1/prompts/p%2F1/versions?page_size=5"


def test_a_literal_segment_beside_a_parameter_routes_by_method(spec: dict[str, Any]) -> None:
    """`POST /experiments/estimate` and `GET|PATCH|DELETE /experiments/{experiment_id}` coexist."""
    from promptopt.local.gateway import Router, _operations

    router = Router(_operations(spec, {}))

    def operation(method: str, path: str) -> str | None:
        route = router.match(path, method)
        op = route.operations.get(method) if route else None
        return op.name if op else None

    assert operation("POST", "/api/v1/experiments/estimate") == "experiments_estimate"
    assert operation("GET", "/api/v1/experiments/ex_0123456789abcdef0123") == "experiments_get"
    assert operation("PATCH", "/api/v1/experiments/ex_0123456789abcdef0123") == "experiments_update"
    # A literal route lacking the method falls through to the template that has it, as in API
    # Gateway (the function then answers 404 for an id it could never have issued).
    assert operation("GET", "/api/v1/experiments/estimate") == "experiments_get"
    assert operation("DELETE", "/api/v1/experiments/estimate") == "experiments_delete"
    route = router.match("/api/v1/experiments/estimate", "PUT")
    assert route is not None
    assert route.template == "/api/v1/experiments/estimate"  # 405: its Allow lists POST


def test_the_literal_route_answers_through_the_gateway(spec: dict[str, Any], issuer_dir: Path) -> None:
    token = dev_issuer.mint_token(tenant="acme", role="viewer", issuer_dir=issuer_dir)
    auth = {"Authorization": f"Bearer {token}"}
    status, _, body = call(spec, issuer_dir, "POST", "/api/v1/experiments/estimate", headers=auth, json={})
    assert (status, body["method"], body["path_qs"]) == (200, "POST", "/api/v1/experiments/estimate")
    status, headers, body = call(spec, issuer_dir, "PUT", "/api/v1/experiments/estimate", headers=auth)
    assert_problem(status, headers, body, 405)
    assert headers["Allow"] == "POST"


def test_jwks_is_served(spec: dict[str, Any], issuer_dir: Path) -> None:
    status, _, body = call(spec, issuer_dir, "GET", "/.well-known/jwks.json")
    assert status == 200
    assert body == dev_issuer.jwks(issuer_dir)


# --- the token matrix ------------------------------------------------------------------------------


def _hs256_with_public_key(issuer_dir: Path) -> str:
    """The classic key-confusion forgery: HMAC-signed with the RSA public key as the secret."""
    public = jwt.PyJWK(dev_issuer.jwks(issuer_dir)["keys"][0]).key
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": _kid(issuer_dir)}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _alg_none(issuer_dir: Path) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": _kid(issuer_dir)}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


def _other_key_same_kid(issuer_dir: Path, other_dir: Path) -> str:
    token = dev_issuer.mint_token(tenant="acme", role="admin", issuer_dir=other_dir)
    _, payload, signature = token.split(".")
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": _kid(issuer_dir)}).encode())
    return f"{header}.{payload}.{signature}"


def _tampered(issuer_dir: Path) -> str:
    token = dev_issuer.mint_token(tenant="acme", role="viewer", issuer_dir=issuer_dir)
    header, _, signature = token.split(".")
    return f"{header}.{_b64(json.dumps(_claims(role='admin')).encode())}.{signature}"


def _mint(**claims: Any) -> Callable[[Path, Path], str]:
    def make(issuer_dir: Path, _other: Path) -> str:
        return dev_issuer.mint_token(tenant="acme", role="editor", issuer_dir=issuer_dir, extra_claims=claims)

    return make


NOW = int(time.time())
BAD_TOKENS: dict[str, Callable[[Path, Path], str | None]] = {
    "none": lambda d, o: None,
    "empty bearer": lambda d, o: "",
    "garbage": lambda d, o: "not-a-jwt",
    "three garbage parts": lambda d, o: "a.b.c",
    "expired": _mint(exp=NOW - 3600, iat=NOW - 7200),
    "not yet valid": _mint(nbf=NOW + 3600),
    "issued in the future": _mint(iat=NOW + 3600),
    "wrong audience": _mint(aud="someone-else"),
    "wrong issuer": _mint(iss="https://evil.example.com"),
    "no exp": _mint(exp=None),
    "alg none": lambda d, o: _alg_none(d),
    "hs256 with public key": lambda d, o: _hs256_with_public_key(d),
    "other rsa key, unknown kid": lambda d, o: dev_issuer.mint_token(tenant="a", role="admin", issuer_dir=o),
    "other rsa key, trusted kid": _other_key_same_kid,
    "tampered claims": lambda d, o: _tampered(d),
}


# Each refusal must happen for its own reason, not by accident of an earlier check.
WHY = {
    "none": "Authorization: Bearer",
    "empty bearer": "Authorization: Bearer",
    "garbage": "not a JWT",
    "three garbage parts": "not a JWT",
    "expired": "expired",
    "not yet valid": "not yet valid (nbf)",
    "issued in the future": "not yet valid (iat)",
    "wrong audience": "Audience",
    "wrong issuer": "issuer",
    "no exp": '"exp"',
    "alg none": "RS256",
    "hs256 with public key": "RS256",
    "other rsa key, unknown kid": "key is unknown",
    "other rsa key, trusted kid": "Signature verification failed",
    "tampered claims": "Signature verification failed",
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused_and_never_forwarded(
    case: str, spec: dict[str, Any], issuer_dir: Path, other_issuer_dir: Path
) -> None:
    token = BAD_TOKENS[case](issuer_dir, other_issuer_dir)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    status, got, body = call(spec, issuer_dir, "GET", SECURED, headers=headers)
    problem = assert_problem(status, got, body, 401)
    assert got["WWW-Authenticate"].startswith("Bearer")
    assert "X-Backend" not in got
    assert problem.code in ("unauthenticated", "invalid_token")
    assert WHY[case] in problem.detail


def test_basic_auth_is_refused(spec: dict[str, Any], issuer_dir: Path) -> None:
    status, headers, body = call(spec, issuer_dir, "GET", SECURED, headers={"Authorization": "Basic dTpw"})
    assert_problem(status, headers, body, 401)


# --- forwarding ----------------------------------------------------------------------------------


def test_valid_token_is_forwarded_with_claims(spec: dict[str, Any], issuer_dir: Path) -> None:
    token = dev_issuer.mint_token(tenant="acme", role="editor", subject="ann", issuer_dir=issuer_dir)
    status, headers, body = call(
        spec,
        issuer_dir,
        "POST",
        f"{SECURED}?x=1&x=2",
        data=b'{"output_prompt": "Q: {input}"}',
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": "k-1",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "must not pass",
        },
    )
    assert status == 200
    assert headers["X-Backend"] == "echo"
    assert headers["ETag"] == '"v1"'
    sent = {k.lower(): v for k, v in body["headers"].items()}
    assert body["method"] == "POST"
    assert body["path_qs"] == f"{SECURED}?x=1&x=2"
    assert body["body"] == '{"output_prompt": "Q: {input}"}'
    claims = decode_userinfo(sent[USERINFO_HEADER.lower()])
    assert (claims["tenant"], claims["role"], claims["sub"]) == ("acme", "editor", "ann")
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert "authorization" not in sent
    assert sent["x-forwarded-authorization"] == f"Bearer {token}"
    assert sent["idempotency-key"] == "k-1"
    assert sent["content-type"] == "application/json"
    assert "x-hop" not in sent
    assert sent["x-cloud-trace-context"]


def test_forged_userinfo_is_replaced(spec: dict[str, Any], issuer_dir: Path) -> None:
    token = dev_issuer.mint_token(tenant="acme", role="viewer", issuer_dir=issuer_dir)
    forged = openapi_forgery()
    status, _, body = call(
        spec, issuer_dir, "GET", SECURED,
        headers={"Authorization": f"Bearer {token}", USERINFO_HEADER: forged,
                 "x-apigateway-api-userinfo": forged},
    )  # fmt: skip
    assert status == 200
    values = [v for k, v in body["headers"].items() if k.lower() == USERINFO_HEADER.lower()]
    assert len(values) == 1
    claims = decode_userinfo(values[0])
    assert (claims["tenant"], claims["role"]) == ("acme", "viewer")


def openapi_forgery() -> str:
    return base64.urlsafe_b64encode(
        json.dumps({"sub": "x", "tenant": "victim", "role": "admin"}).encode()
    ).decode()


def test_public_route_needs_no_token_and_strips_forged_claims(spec: dict[str, Any], issuer_dir: Path) -> None:
    status, _, body = call(
        spec, issuer_dir, "GET", PUBLIC,
        headers={USERINFO_HEADER: openapi_forgery(), "X-Cloud-Trace-Context": "abc/1;o=1"},
    )  # fmt: skip
    assert status == 200
    sent = {k.lower(): v for k, v in body["headers"].items()}
    assert USERINFO_HEADER.lower() not in sent
    assert sent["x-cloud-trace-context"] == "abc/1;o=1"


def test_backend_down_is_502(spec: dict[str, Any], issuer_dir: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    assert_problem(*call(spec, issuer_dir, "GET", PUBLIC, backend_url=down), 502)


def test_backend_timeout_is_504(spec: dict[str, Any], issuer_dir: Path) -> None:
    slow = copy.deepcopy(spec)
    slow["paths"]["/slow"] = {"get": {**spec["paths"][PUBLIC]["get"], "operationId": "slow"}}
    slow["paths"]["/slow"]["get"]["x-google-backend"] = {"address": "${backends.slow}", "deadline": 0.3}
    started = time.monotonic()
    assert_problem(*call(slow, issuer_dir, "GET", "/slow"), 504)
    assert time.monotonic() - started < 1.9


def test_request_over_32mb_is_413(spec: dict[str, Any], issuer_dir: Path) -> None:
    async def go() -> bytes:
        async with gateway(spec, issuer_dir) as client:
            assert client.port is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
            writer.write(
                f"POST {SECURED} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {MAX_REQUEST_BYTES + 1}\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            return head

    head = run(go())
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in head


def test_concurrent_requests_share_the_pool(spec: dict[str, Any], issuer_dir: Path) -> None:
    token = dev_issuer.mint_token(tenant="acme", role="viewer", issuer_dir=issuer_dir)

    async def go() -> list[int]:
        async with gateway(spec, issuer_dir) as client:

            async def one() -> int:
                response = await client.get(SECURED, headers={"Authorization": f"Bearer {token}"})
                await response.read()
                return response.status

            return await asyncio.gather(*(one() for _ in range(64)))

    assert run(go()) == [200] * 64


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_starts_serves_and_stops_on_sigterm(issuer_dir: Path, tmp_path: Path) -> None:
    jwks_file = tmp_path / "jwks.json"
    dev_issuer.write_jwks(jwks_file, issuer_dir)
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptopt.local.gateway", "--spec", str(repo_root() / openapi.SPEC_PATH),
         "--host", "127.0.0.1", "--port", str(port), "--jwks-file", str(jwks_file),
         "--backend", f"health=http://127.0.0.1:{free_port()}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"ready on http://127.0.0.1:{port}" in line

        async def probe() -> tuple[int, int]:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}{PUBLIC}") as down:
                    pass
                async with session.get(f"http://127.0.0.1:{port}{SECURED}") as secured:
                    pass
            return down.status, secured.status

        assert run(probe()) == (502, 401)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
