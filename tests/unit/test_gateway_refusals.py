"""Every refusal the local gateway makes is problem+json, including those of aiohttp's HTTP parser.

Requests are written byte for byte on a socket: the malformed ones are exactly what a client
library would refuse to send.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from promptopt.http import problems
from promptopt.http.answer_models import Problem
from promptopt.local import dev_issuer, gateway
from promptopt.local.gateway import GatewayRunner, create_app
from promptopt.tooling import openapi

ISSUER = dev_issuer.DEV_ISSUER
AUDIENCE = dev_issuer.DEV_AUDIENCE
SECURED = "/api/v1/prompts"
PUBLIC = "/api/v1/health"
BODY = b'{"output_prompt": "Q: {input}"}'


class GatewayTestServer(TestServer):
    """TestServer with the runner `python -m promptopt.local.gateway` serves with."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return GatewayRunner(self.app, **kwargs)


@pytest.fixture(autouse=True)
def _dev_issuer_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_DEV_ISSUER_URL", raising=False)
    monkeypatch.delenv("PROMPTOPT_DEV_AUDIENCE", raising=False)


@pytest.fixture(scope="module")
def issuer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return openapi.build_spec()


class Backend:
    """An echo backend that counts what reaches it."""

    def __init__(self) -> None:
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        body = await request.read()
        return web.json_response(
            {"body": body.decode("latin-1"), "encoding": request.headers.get("Content-Encoding")}
        )


@asynccontextmanager
async def running(spec: dict[str, Any], issuer_dir: Path, backend: Backend) -> AsyncIterator[int]:
    """The gateway on a socket (its port), every operation routed to `backend`."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", backend.handle)
    async with TestServer(app) as upstream:
        url = str(upstream.make_url("")).rstrip("/")
        names = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
        gw = create_app(spec, dict.fromkeys(names, url), dev_issuer.jwks(issuer_dir), ISSUER, [AUDIENCE])
        async with GatewayTestServer(gw) as server:
            assert server.port is not None
            yield server.port


async def _exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
        return status, headers, body
    finally:
        writer.close()


def send(spec: dict[str, Any], issuer_dir: Path, data: bytes) -> tuple[int, dict[str, str], bytes, int]:
    """Write raw bytes to the gateway; the status, headers, body and the backend's hit count."""
    backend = Backend()

    async def go() -> tuple[int, dict[str, str], bytes]:
        async with running(spec, issuer_dir, backend) as port:
            return await _exchange(port, data)

    status, headers, body = asyncio.run(go())
    return status, headers, body, backend.hits


def problem_of(status: int, headers: dict[str, str], body: bytes, expected: int, code: str) -> Problem:
    assert status == expected, body
    assert headers["content-type"].startswith("application/problem+json"), (headers, body)
    problem = Problem.model_validate(json.loads(body))
    assert (problem.status, problem.code) == (expected, code)
    assert problem.type == problems.PROBLEM_TYPE_BASE + code
    assert problem.title
    assert problem.detail
    return problem


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def token(issuer_dir: Path, **claims: Any) -> str:
    return dev_issuer.mint_token(
        tenant="acme", role="editor", issuer_dir=issuer_dir, extra_claims=claims or None
    )


def test_problem_shape_matches_the_functions() -> None:
    assert gateway.PROBLEM_TYPE_BASE == problems.PROBLEM_TYPE_BASE
    assert gateway.PROBLEM_CONTENT_TYPE == problems.CONTENT_TYPE


# --- content codings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", BODY),  # claims gzip, is not: used to be a 500
        ("deflate", BODY),  # likewise
        ("br", BODY),  # used to be a text/plain 400 (no Brotli decoder installed)
        ("zstd", BODY),
        ("gzip", gzip.compress(BODY)),  # valid gzip: refused too, never inflated
        ("identity, gzip", BODY),
        ("x-unknown", BODY),
    ],
)
def test_an_encoded_body_is_refused_with_415(
    spec: dict[str, Any], issuer_dir: Path, encoding: str, body: bytes
) -> None:
    headers = {
        "Authorization": f"Bearer {token(issuer_dir)}",
        "Content-Type": "application/json",
        "Content-Encoding": encoding,
    }
    status, got, payload, hits = send(spec, issuer_dir, request("POST", SECURED, headers, body))
    problem_of(status, got, payload, 415, "unsupported_content_encoding")
    assert got["accept-encoding"] == "identity"
    assert hits == 0


def test_an_identity_body_passes_byte_for_byte(spec: dict[str, Any], issuer_dir: Path) -> None:
    headers = {
        "Authorization": f"Bearer {token(issuer_dir)}",
        "Content-Type": "application/json",
        "Content-Encoding": "identity",
    }
    status, _, payload, hits = send(spec, issuer_dir, request("POST", SECURED, headers, BODY))
    assert status == 200, payload
    assert json.loads(payload)["body"] == BODY.decode()
    assert hits == 1


def test_a_broken_chunked_body_is_a_400_problem(spec: dict[str, Any], issuer_dir: Path) -> None:
    head = request(
        "POST", SECURED, {"Authorization": f"Bearer {token(issuer_dir)}", "Transfer-Encoding": "chunked"}
    )
    status, got, payload, hits = send(spec, issuer_dir, head + b"zz\r\nabc\r\n0\r\n\r\n")
    problem_of(status, got, payload, 400, "malformed_request")
    assert hits == 0


# --- what the HTTP parser refuses ------------------------------------------------------------------


PARSER_REFUSALS = {
    "long path": (request("GET", "/api/v1/" + "a" * (gateway.MAX_URL_BYTES + 10), {}), 414, "uri_too_long"),
    "long header": (
        request("GET", PUBLIC, {"X-Big": "a" * (gateway.MAX_HEADER_BYTES + 10)}),
        431,
        "header_fields_too_large",
    ),
    "long header name": (
        request("GET", PUBLIC, {"X-" + "a" * gateway.MAX_HEADER_BYTES: "1"}),
        431,
        "header_fields_too_large",
    ),
    "too many headers": (
        request("GET", PUBLIC, {f"X-H{i}": "1" for i in range(gateway.MAX_HEADERS + 5)}),
        431,
        "header_fields_too_large",
    ),
    "garbage request line": (b"GARBAGE\r\n\r\n", 400, "malformed_request"),
    "bad method": (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request"),
    "bad header token": (
        b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        400,
        "malformed_request",
    ),
    "bad content-length": (
        b"POST /api/v1/prompts HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        400,
        "malformed_request",
    ),
    "tls on the http port": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
        400,
        "malformed_request",
    ),
}


@pytest.mark.parametrize("case", sorted(PARSER_REFUSALS))
def test_what_the_parser_refuses_is_a_problem(spec: dict[str, Any], issuer_dir: Path, case: str) -> None:
    data, expected, code = PARSER_REFUSALS[case]
    status, got, payload, hits = send(spec, issuer_dir, data)
    problem_of(status, got, payload, expected, code)
    assert b"aaaaaaaaaa" not in payload  # the request's bytes are not echoed back
    assert hits == 0


def test_headers_up_to_the_limits_pass(spec: dict[str, Any], issuer_dir: Path) -> None:
    headers = {"X-Big": "a" * 8000, **{f"X-H{i}": "1" for i in range(gateway.MAX_HEADERS - 10)}}
    status, _, payload, hits = send(spec, issuer_dir, request("GET", PUBLIC + "?q=" + "b" * 8000, headers))
    assert status == 200, payload
    assert hits == 1


def test_a_gateway_failure_is_a_500_problem(
    spec: dict[str, Any], issuer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(gateway._Gateway, "_forward_headers", broken)
    status, got, payload, hits = send(spec, issuer_dir, request("GET", PUBLIC, {}))
    problem = problem_of(status, got, payload, 500, "gateway_error")
    assert "boom" not in problem.detail
    assert hits == 0


# --- token lifetime --------------------------------------------------------------------------------


def _secured(spec: dict[str, Any], issuer_dir: Path, bearer: str) -> tuple[int, dict[str, str], bytes, int]:
    return send(spec, issuer_dir, request("GET", SECURED, {"Authorization": f"Bearer {bearer}"}))


def test_a_ten_year_token_is_refused(spec: dict[str, Any], issuer_dir: Path) -> None:
    now = int(time.time())
    status, got, payload, hits = _secured(
        spec, issuer_dir, token(issuer_dir, iat=now, exp=now + 10 * 365 * 86400)
    )
    problem = problem_of(status, got, payload, 401, "invalid_token")
    assert f"at most {dev_issuer.MAX_TTL_S} s" in problem.detail
    assert hits == 0


def test_a_token_backdated_to_look_short_lived_is_refused(spec: dict[str, Any], issuer_dir: Path) -> None:
    now = int(time.time())
    status, got, payload, _ = _secured(spec, issuer_dir, token(issuer_dir, iat=now - 86400, exp=now + 600))
    problem_of(status, got, payload, 401, "invalid_token")


def test_a_token_without_iat_is_refused(spec: dict[str, Any], issuer_dir: Path) -> None:
    status, got, payload, _ = _secured(spec, issuer_dir, token(issuer_dir, iat=None))
    problem = problem_of(status, got, payload, 401, "invalid_token")
    assert '"iat"' in problem.detail


def test_a_token_of_exactly_the_cap_passes(spec: dict[str, Any], issuer_dir: Path) -> None:
    bearer = dev_issuer.mint_token(
        tenant="acme", role="editor", ttl_s=dev_issuer.MAX_TTL_S, issuer_dir=issuer_dir
    )
    status, _, payload, hits = _secured(spec, issuer_dir, bearer)
    assert status == 200, payload
    assert hits == 1


def test_the_dev_issuer_refuses_a_longer_lifetime(issuer_dir: Path) -> None:
    with pytest.raises(ValueError, match="at most 3600 s"):
        dev_issuer.mint_token(
            tenant="acme", role="editor", ttl_s=dev_issuer.MAX_TTL_S + 1, issuer_dir=issuer_dir
        )
    expired = dev_issuer.mint_token(tenant="acme", role="editor", ttl_s=-60, issuer_dir=issuer_dir)
    assert expired  # negative lifetimes (expired tokens for tests) are still minted


def test_dev_token_cli_stays_within_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptopt.cli import auth
    from promptopt.cli.main import main

    assert auth.MAX_DEV_TOKEN_TTL_S == dev_issuer.MAX_TTL_S == gateway.MAX_TOKEN_LIFETIME_S
    monkeypatch.setenv("PROMPTOPT_DEV_ISSUER_DIR", str(tmp_path))
    base = ["auth", "dev-token", "--tenant", "acme", "--role", "editor"]
    assert main(base) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == dev_issuer.MAX_TTL_S
    assert main([*base, "--ttl", str(dev_issuer.MAX_TTL_S + 1)]) == 2
    assert "at most 3600" in capsys.readouterr().err
