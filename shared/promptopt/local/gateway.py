r"""A local stand-in for Google API Gateway, routing from the same OpenAPI document.

It behaves like the real gateway on the points the functions rely on: routes and methods come from
`terraform/api/openapi.yaml`; secured operations need an RS256 bearer token that verifies against
the JWKS (signature by `kid`, issuer, audience, expiry); the verified claims reach the backend as
`X-Apigateway-Api-Userinfo` (base64url JSON), the caller's `Authorization` moves to
`X-Forwarded-Authorization`, and a client can never send its own claims header.

Every refusal the gateway itself makes is `application/problem+json` (RFC 9457) with a stable
`code`, including those aiohttp's HTTP parser makes before any handler runs (a request line over
MAX_URL_BYTES is a 414, a header line over MAX_HEADER_BYTES or more than MAX_HEADERS headers a 431,
any other malformed request a 400). Tokens are refused when they live longer than an ID token
(`dev_issuer.MAX_TTL_S`, one hour, as Firebase and Identity Platform issue them). Request bodies are
passed through byte for byte and never decoded: a body sent with a `Content-Encoding` other than
`identity` is refused with 415 (`Accept-Encoding: identity`), because the functions read bodies as
plain JSON and a gateway that inflated them would accept a 32 MB decompression bomb.

    python -m promptopt.local.gateway --spec terraform/api/openapi.yaml --port 8080 \\
        --backend health=http://127.0.0.1:8101 --jwks-file ~/.config/promptopt/dev-issuer/jwks.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import re
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import yaml
from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict
from yarl import URL

from promptopt.auth import USERINFO_HEADER, encode_userinfo
from promptopt.local.dev_issuer import MAX_TTL_S

log = logging.getLogger("promptopt.local.gateway")

MAX_REQUEST_BYTES = 32 * 1024 * 1024  # API Gateway's request size limit
DEFAULT_DEADLINE_S = 15.0  # x-google-backend's default deadline
LEEWAY_S = 30
# The longest token lifetime accepted (exp - iat), and how far ahead exp may lie: an ID token's hour.
MAX_TOKEN_LIFETIME_S = MAX_TTL_S
# HTTP parser limits. A header is held to what the functions' gunicorn accepts (8190), so a long
# one is refused here as a problem rather than by the backend in text; the two limits differ so a
# LineTooLong tells which was exceeded: the request target (414) or a header (431).
MAX_URL_BYTES = 16384
MAX_HEADER_BYTES = 8190
MAX_HEADERS = 128
SECURITY_NAME = "promptopt_jwt"
# As promptopt.http.problems, which needs flask; tests/unit/test_gateway_refusals.py keeps them equal.
PROBLEM_TYPE_BASE = "https://promptopt.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
IDENTITY_ENCODINGS = frozenset({"", "identity"})
JWKS_PATH = "/.well-known/jwks.json"

# Hop-by-hop headers (RFC 9110 7.6.1) plus those the gateway sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "transfer-encoding", "upgrade",
    }
)  # fmt: skip
_DROP_REQUEST = _HOP_BY_HOP | {
    "host",
    "content-length",
    "authorization",
    "x-forwarded-authorization",
    USERINFO_HEADER.lower(),
}
_DROP_RESPONSE = _HOP_BY_HOP | {"content-length"}
_PARAM_RE = re.compile(r"\{[^/{}]+\}")
_RETRYABLE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
# A dropped connection may have reached the backend: only methods safe to repeat are retried.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class TokenError(Exception):
    """A bearer token that must not pass; the message is safe to show the caller."""


@dataclass(frozen=True)
class Operation:
    """One routed operation: its backend and whether it needs a token."""

    name: str
    method: str
    secured: bool
    address: str | None
    timeout: aiohttp.ClientTimeout
    # The security definitions any one of which admits a token (OpenAPI alternatives).
    schemes: tuple[str, ...] = (SECURITY_NAME,)


@dataclass(frozen=True)
class Route:
    """One path template and the operations on it, by method."""

    template: str
    regex: re.Pattern[str] | None
    operations: Mapping[str, Operation]

    @property
    def allow(self) -> str:
        """The `Allow` header value for a 405."""
        return ", ".join(sorted(self.operations))


class Router:
    """Precompiled routes: literal paths by dict lookup, templates by regex (most literal first)."""

    def __init__(self, routes: list[Route]) -> None:
        self._static = {r.template: r for r in routes if r.regex is None}
        self._templated = sorted(
            (r for r in routes if r.regex is not None),
            key=lambda r: (-len(_PARAM_RE.sub("", r.template)), r.template),
        )

    def match(self, path: str, method: str | None = None) -> Route | None:
        """The route for a raw (still percent-encoded) request path, if any.

        A literal path wins over a template (`POST /experiments/estimate` beside
        `GET /experiments/{experiment_id}`), as in API Gateway, which matches method and path
        together with literal segments first. So with `method`, the most literal route that has
        the method is chosen; when none has it, the most literal route of the path (for a 405).
        """
        found = self._static.get(path)
        if found is not None and (method is None or method in found.operations):
            return found
        for candidate in self._templated:
            assert candidate.regex is not None
            if not candidate.regex.match(path):
                continue
            if method is None or method in candidate.operations:
                return candidate
            found = found or candidate
        return found


class TokenVerifier:
    """RS256 verification against a fixed JWKS, with verified tokens cached until they expire."""

    _CACHE_MAX = 4096

    def __init__(self, jwks: Mapping[str, Any], issuer: str, audiences: list[str]) -> None:
        self._keys: dict[str | None, Any] = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256":
                continue
            self._keys[jwk.get("kid")] = jwt.PyJWK(dict(jwk), algorithm="RS256").key
        if not self._keys:
            raise ValueError("the JWKS holds no RS256 key")
        self._issuer = issuer
        self._audiences = list(audiences)
        self._cache: dict[str, tuple[str, float]] = {}

    @property
    def issuer(self) -> str:
        """The `iss` this verifier accepts."""
        return self._issuer

    def verify(self, token: str) -> str:
        """The userinfo header value for a valid token; TokenError otherwise."""
        cached = self._cache.get(token)
        if cached is not None:
            if time.time() <= cached[1] + LEEWAY_S:
                return cached[0]
            del self._cache[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("the bearer token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise TokenError("the token must be signed with RS256")
        kid = header.get("kid")
        if kid is not None and kid not in self._keys:
            raise TokenError("the token's signing key is unknown")
        candidates = [self._keys[kid]] if kid is not None else list(self._keys.values())
        claims = self._decode(token, candidates)
        userinfo = encode_userinfo(claims)
        if len(self._cache) >= self._CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (userinfo, float(claims["exp"]))
        return userinfo

    def _decode(self, token: str, keys: list[Any]) -> dict[str, Any]:
        error: jwt.PyJWTError | None = None
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=["RS256"],
                    audience=self._audiences,
                    issuer=self._issuer,
                    leeway=LEEWAY_S,
                    options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                )
                _check_lifetime(claims)
                return claims
            except jwt.InvalidSignatureError as exc:
                error = exc
            except jwt.PyJWTError as exc:
                raise TokenError(f"the token is not accepted: {exc}") from None
        raise TokenError(f"the token is not accepted: {error}")


def _check_lifetime(claims: Mapping[str, Any]) -> None:
    """Refuse tokens that live longer than an ID token (PyJWT has checked exp, iat and nbf)."""
    try:
        exp, iat = float(claims["exp"]), float(claims["iat"])
    except (TypeError, ValueError):
        raise TokenError("the token's exp and iat must be numbers") from None
    if exp - iat > MAX_TOKEN_LIFETIME_S:
        raise TokenError(f"the token lives {exp - iat:.0f} s; at most {MAX_TOKEN_LIFETIME_S} s is accepted")
    if exp - time.time() > MAX_TOKEN_LIFETIME_S + LEEWAY_S:
        raise TokenError(f"the token expires more than {MAX_TOKEN_LIFETIME_S} s from now")


def _operations(spec: Mapping[str, Any], backends: Mapping[str, str]) -> list[Route]:
    default_security = spec.get("security", [])
    routes = []
    for template, item in spec.get("paths", {}).items():
        operations: dict[str, Operation] = {}
        for method, op in item.items():
            if method.startswith("x-") or method == "parameters":
                continue
            name = str(op["operationId"])
            backend = op.get("x-google-backend", {})
            translation = backend.get("path_translation", "APPEND_PATH_TO_ADDRESS")
            if translation != "APPEND_PATH_TO_ADDRESS":
                raise ValueError(f"{name}: only APPEND_PATH_TO_ADDRESS is supported locally")
            address = str(backend.get("address", ""))
            if not address or "${" in address:
                # The unrendered document names backends by function: `${backends.<name>}`.
                address = backends.get(name, "")
            security = op.get("security", default_security)
            schemes: list[str] = []
            for alternative in security:
                if len(alternative) > 1:
                    raise ValueError(
                        f"{name}: a security requirement naming several schemes is not supported"
                    )
                schemes.extend(alternative)
            operations[method.upper()] = Operation(
                name=name,
                method=method.upper(),
                # Fail closed: any security requirement at all means a token is needed.
                secured=bool(security),
                address=address.rstrip("/") or None,
                timeout=aiohttp.ClientTimeout(total=float(backend.get("deadline", DEFAULT_DEADLINE_S))),
                schemes=tuple(schemes) or (SECURITY_NAME,),
            )
            if not address:
                log.warning("no backend for %s; its route answers 502", name)
        regex = None
        if _PARAM_RE.search(template):
            # `{name}` is one segment; `{name=**}` (API Gateway's double wildcard) the rest of the path.
            pieces, at = [], 0
            for found in _PARAM_RE.finditer(template):
                pieces += [
                    re.escape(template[at : found.start()]),
                    ".*" if "=**" in found.group() else "[^/]+",
                ]
                at = found.end()
            regex = re.compile("^" + "".join(pieces) + re.escape(template[at:]) + "$")
        routes.append(Route(template=template, regex=regex, operations=operations))
    return routes


def _problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A problem+json response shaped as promptopt.http.answer_models.Problem (null members left out)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    response = web.Response(body=json.dumps(body).encode(), status=status, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _refuse_encoding(request: web.Request) -> web.Response | None:
    """A 415 for a body in any content coding but identity (bodies are never decoded here)."""
    codings = [c.strip().lower() for c in request.headers.getall("Content-Encoding", [])]
    codings = [c for part in codings for c in part.split(",")]
    unsupported = sorted({c.strip() for c in codings} - IDENTITY_ENCODINGS)
    if not unsupported:
        return None
    return _problem(
        415,
        "unsupported_content_encoding",
        "Unsupported content encoding",
        f"request bodies must not be encoded (Content-Encoding: {', '.join(unsupported)}); send them as is",
        request.path,
        {"Accept-Encoding": "identity"},
    )


def _trace_header() -> str:
    return f"{random.getrandbits(128):032x}/{random.getrandbits(63)};o=1"


class _Gateway:
    """The state behind one app: routes, verifier and the pooled backend session."""

    def __init__(
        self, router: Router, verifiers: Mapping[str, TokenVerifier], jwks: Mapping[str, Any]
    ) -> None:
        self.router = router
        self.verifiers = dict(verifiers)
        self.verifier = self.verifiers[SECURITY_NAME]
        self.jwks_body = json.dumps(jwks).encode()
        self.session: aiohttp.ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=1.0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # bodies pass through as the backend encoded them
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    def _verifier_for(self, token: str, op: Operation) -> TokenVerifier:
        """The verifier of the operation's scheme whose issuer signed the token (by its `iss`)."""
        candidates = [self.verifiers[n] for n in op.schemes if n in self.verifiers]
        if not candidates:
            raise TokenError("no issuer is trusted for this operation")
        if len(candidates) == 1:
            return candidates[0]
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise TokenError("the bearer token is not a JWT") from None
        for verifier in candidates:
            if verifier.issuer == issuer:
                return verifier
        raise TokenError("the token's issuer is not accepted")

    def _authenticate(self, request: web.Request, op: Operation) -> str | web.Response:
        value = request.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _problem(
                401,
                "unauthenticated",
                "Authentication required",
                "send Authorization: Bearer <token>",
                request.path,
                {"WWW-Authenticate": 'Bearer realm="promptopt"'},
            )
        try:
            return self._verifier_for(token.strip(), op).verify(token.strip())
        except TokenError as exc:
            return _problem(
                401,
                "invalid_token",
                "Authentication required",
                str(exc),
                request.path,
                {"WWW-Authenticate": 'Bearer realm="promptopt", error="invalid_token"'},
            )

    def _forward_headers(self, request: web.Request, userinfo: str | None) -> CIMultiDict[str]:
        headers = request.headers
        drop = _DROP_REQUEST
        connection = headers.get("Connection")
        if connection:
            drop = drop | {t.strip().lower() for t in connection.split(",")}
        out: CIMultiDict[str] = CIMultiDict()
        for name, value in headers.items():
            if name.lower() not in drop:
                out.add(name, value)
        authorization = headers.get("Authorization")
        if authorization:
            out["X-Forwarded-Authorization"] = authorization
        if userinfo is not None:
            out[USERINFO_HEADER] = userinfo
        if "X-Cloud-Trace-Context" not in out:
            out["X-Cloud-Trace-Context"] = _trace_header()
        peer = request.remote
        if peer:
            prior = out.get("X-Forwarded-For")
            out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        return out

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route, authenticate and forward one request."""
        path = request.rel_url.raw_path
        route = self.router.match(path, request.method)
        if route is None:
            if path == JWKS_PATH and request.method == "GET":
                return web.Response(body=self.jwks_body, content_type="application/json")
            return _problem(404, "route_not_found", "Not found", f"no route {request.path}", request.path)
        op = route.operations.get(request.method)
        if op is None:
            return _problem(
                405,
                "method_not_allowed",
                "Method not allowed",
                f"{request.path} does not accept {request.method}",
                request.path,
                {"Allow": route.allow},
            )
        if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
            return self._too_large(request)
        userinfo: str | None = None
        if op.secured:
            outcome = self._authenticate(request, op)
            if isinstance(outcome, web.Response):
                return outcome
            userinfo = outcome
        if request.body_exists:
            refusal = _refuse_encoding(request)
            if refusal is not None:
                return refusal
        try:
            body = await request.read() if request.body_exists else None
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(request)
        except web.RequestPayloadError as exc:  # a truncated body, a broken chunked encoding
            return _problem(
                400, "invalid_body", "Bad request", f"the body could not be read: {exc}", request.path
            )
        return await self._forward(request, op, self._forward_headers(request, userinfo), body)

    def _too_large(self, request: web.Request) -> web.Response:
        return _problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"requests are limited to {MAX_REQUEST_BYTES} bytes",
            request.path,
        )

    async def _forward(
        self, request: web.Request, op: Operation, headers: CIMultiDict[str], body: bytes | None
    ) -> web.StreamResponse:
        if op.address is None:
            return _problem(
                502,
                "backend_not_configured",
                "Bad gateway",
                f"no backend is configured for {op.name}",
                request.path,
            )
        assert self.session is not None, "the app has not started"
        # rel_url, not raw_path: an absolute-form target (`GET http://x/...`) must not leak in.
        url = URL(op.address + request.rel_url.raw_path_qs, encoded=True)
        for attempt in (1, 2):
            try:
                async with self.session.request(
                    op.method,
                    url,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=op.timeout,
                ) as upstream:
                    payload = await upstream.read()
                    out = CIMultiDict(
                        (k, v) for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE
                    )
                    return web.Response(status=upstream.status, body=payload, headers=out)
            except TimeoutError:
                log.warning("%s: backend timed out after %ss", op.name, op.timeout.total)
                return _problem(
                    504,
                    "backend_timeout",
                    "Gateway timeout",
                    f"{op.name} did not answer within {op.timeout.total:g} s",
                    request.path,
                )
            except _RETRYABLE as exc:
                # Like the real gateway (Envoy), retry once on a reset or refused connection.
                if attempt == 1 and (
                    op.method in _IDEMPOTENT_METHODS or isinstance(exc, aiohttp.ClientConnectorError)
                ):
                    continue
                log.warning("%s: backend unreachable: %s", op.name, exc)
            except aiohttp.ClientError as exc:
                log.warning("%s: backend error: %s", op.name, exc)
                break
        return _problem(
            502, "backend_unavailable", "Bad gateway", f"{op.name} could not be reached", request.path
        )


_STATE = web.AppKey("promptopt_gateway", _Gateway)


class _ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering malformed requests and handler crashes as problems.

    aiohttp answers what its HTTP parser refuses (before any route or middleware runs) and any
    exception a handler lets escape through `handle_error`, in text/plain; this is the one place
    that sees them all.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The problem for one refused or failed request; the connection is closed after it."""
        if status >= 500:
            super().handle_error(request, status, exc, message)  # logs the traceback; raises if sent
            problem = _problem(500, "gateway_error", "Internal error", "the gateway failed", None)
        else:
            if request.writer.output_size > 0:
                raise ConnectionError("a response was already sent; cannot send the error")
            problem = _parser_problem(exc, self.max_line_size)
            log.info("refused a malformed request from %s: %s", request.remote, problem.status)
        problem.force_close()
        return problem


def _parser_problem(exc: BaseException | None, max_line_size: int) -> web.Response:
    """The problem for a request aiohttp's parser refused; the request's bytes are not echoed."""
    if isinstance(exc, http_exceptions.LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == max_line_size:
            return _problem(
                414, "uri_too_long", "URI too long", f"the request line exceeds {max_line_size} bytes", None
            )
        return _problem(
            431,
            "header_fields_too_large",
            "Request header fields too large",
            f"a header line exceeds {limit} bytes",
            None,
        )
    if isinstance(exc, http_exceptions.BadHttpMessage) and "too many headers" in str(exc).lower():
        return _problem(
            431,
            "header_fields_too_large",
            "Request header fields too large",
            f"more than {MAX_HEADERS} header fields",
            None,
        )
    reason = type(exc).__name__ if exc is not None else "malformed request"
    return _problem(
        400, "malformed_request", "Bad request", f"the request is not valid HTTP/1.1 ({reason})", None
    )


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """The runner to serve `create_app` with: its parser limits, no body decoding, problem refusals."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_URL_BYTES)
        kwargs.setdefault("max_field_size", MAX_HEADER_BYTES)
        kwargs.setdefault("max_headers", MAX_HEADERS)
        kwargs.setdefault("auto_decompress", False)  # bodies pass through as sent
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same state, one overridden factory method: each connection gets a _ProblemRequestHandler.
        server.__class__ = _ProblemServer
        return server


@dataclass(frozen=True)
class Trust:
    """A further issuer the gateway accepts for the security definition of the same name."""

    issuer: str
    audiences: list[str]
    jwks: Mapping[str, Any]

    @classmethod
    def from_file(cls, path: Path) -> Trust:
        """Read `{"issuer": ..., "audiences": [...], "jwks": {"keys": [...]}}`."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(issuer=str(data["issuer"]), audiences=list(data["audiences"]), jwks=data["jwks"])


def create_app(
    spec: Mapping[str, Any],
    backends: Mapping[str, str],
    jwks: Mapping[str, Any],
    issuer: str,
    audiences: list[str],
    trusted: Mapping[str, Trust] | None = None,
    *,
    dev_sign_in: bool = False,
) -> web.Application:
    """The gateway as an aiohttp application.

    Args:
        spec: the generated OpenAPI document (placeholders rendered or not; unrendered backend
            addresses are taken from `backends`).
        backends: function name -> base URL of its local process.
        jwks: the issuer's key set (`{"keys": [...]}`).
        issuer: the required `iss`.
        audiences: accepted `aud` values (any one suffices).
        trusted: further issuers by security definition name (e.g. promptopt_api_token, the
            tokens the platform signs for API keys); an operation accepts a token from any scheme
            its `security` lists.
        dev_sign_in: serve `POST /_dev/sign-in` (the dashboard's local sign-in, dev issuer tokens).
    """
    verifiers = {SECURITY_NAME: TokenVerifier(jwks, issuer, audiences)}
    for name, trust in (trusted or {}).items():
        verifiers[name] = TokenVerifier(trust.jwks, trust.issuer, trust.audiences)
    gateway = _Gateway(Router(_operations(spec, backends)), verifiers, jwks)
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[_STATE] = gateway
    app.on_startup.append(gateway.start)
    app.on_cleanup.append(gateway.stop)
    if dev_sign_in:  # local only: the deployed gateway has no such route
        from promptopt.local import dev_sign_in as sign_in

        app.router.add_post(sign_in.PATH, sign_in.handler())
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    return app


def load_spec(path: Path) -> dict[str, Any]:
    """Read an OpenAPI YAML document."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an OpenAPI document")
    return data


def _parse_backends(items: list[str]) -> dict[str, str]:
    backends = {}
    for item in items:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise SystemExit(f"--backend wants NAME=URL, got {item!r}")
        backends[name] = url
    return backends


async def serve(app: web.Application, host: str, port: int) -> None:
    """Run until SIGTERM or SIGINT; print one ready line with the bound address."""
    runner = GatewayRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = runner.addresses[0][1] if runner.addresses else port  # the real port when asked for 0
    log.info("gateway listening on http://%s:%s", host, bound)
    print(f"promptopt gateway ready on http://{host}:{bound}", flush=True)  # the ready line others wait for
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        log.info("gateway stopped")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    from promptopt.local import dev_issuer

    parser = argparse.ArgumentParser(prog="python -m promptopt.local.gateway", description=__doc__)
    parser.add_argument("--spec", type=Path, required=True, help="the OpenAPI document (YAML)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--backend", action="append", default=[], metavar="NAME=URL")
    parser.add_argument("--jwks-file", type=Path, help="JWKS to verify against (default: the dev issuer's)")
    parser.add_argument("--issuer", default=None, help="required iss (default: the dev issuer's)")
    parser.add_argument(
        "--audience", action="append", default=None, help="accepted aud, repeatable (default: dev issuer's)"
    )
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="SCHEME=FILE",
        help='a further issuer for a security definition: JSON {"issuer", "audiences", "jwks"}',
    )
    parser.add_argument(
        "--dev-sign-in", action="store_true", help="serve POST /_dev/sign-in (dev issuer tokens)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    jwks = json.loads(args.jwks_file.read_text(encoding="utf-8")) if args.jwks_file else dev_issuer.jwks()
    app = create_app(
        load_spec(args.spec),
        _parse_backends(args.backend),
        jwks,
        args.issuer or dev_issuer.issuer_url(),
        args.audience or [dev_issuer.audience()],
        {name: Trust.from_file(Path(path)) for name, path in _parse_backends(args.trust).items()},
        dev_sign_in=args.dev_sign_in,
    )
    try:  # uvloop, where installed, trims the per-request overhead (optional)
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(app, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
