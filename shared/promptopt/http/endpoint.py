"""`serve`: the one wrapper every HTTP entry point calls.

It resolves the function's own manifest entry, matches the route, builds the principal from the
gateway claims, enforces the minimum role and the size caps, applies Idempotency-Key on POST, runs
the handler and turns every error into a problem+json response.

pydantic is not imported here: a handler that parses a body or a query passes its model, which
brings pydantic with it, and one that answers from plain dicts leaves it out of its cold start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import flask

from promptopt import json_depth, logs, startup
from promptopt.auth import USERINFO_HEADER, Principal, principal_from_header
from promptopt.config import settings
from promptopt.errors import (
    ApiError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    UnsupportedMediaType,
)
from promptopt.http import guards, json_body
from promptopt.http.problems import (
    from_api_error,
    from_validation,
    json_default,
    problem_body,
    problem_response,
)
from promptopt.http.spec import EndpointSpec, endpoint_for_main

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger("promptopt.http")
M = TypeVar("M", bound="BaseModel")
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass
class Reply:
    """What a handler returns: a body (model or JSON-able), a status and extra headers."""

    body: BaseModel | dict[str, Any] | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One request, already routed and authenticated."""

    request: flask.Request
    spec: EndpointSpec
    principal: Principal | None
    path: dict[str, str]
    _json: Any = None

    @property
    def user(self) -> Principal:
        """The authenticated principal (endpoints with auth mode `user`)."""
        if self.principal is None:
            raise RuntimeError("this endpoint is public; it has no principal")
        return self.principal

    @property
    def raw_body(self) -> Any:
        """The JSON body as parsed, not validated.

        For a handler that reads a plainly valid body itself and hands anything else to `body`,
        whose model words the 400.
        """
        return self._json

    def body(self, model: type[M]) -> M:
        """The JSON body validated strictly against `model` (JSON has types: "1" is not 1)."""
        from pydantic import ValidationError  # loaded already: `model` is a pydantic model

        try:
            return model.model_validate(self._json, strict=True)
        except ValidationError as exc:
            raise from_validation(exc, "body") from None

    def query(self, model: type[M]) -> M:
        """The query string validated against `model` (a repeated parameter is an error)."""
        args = self.request.args
        repeated = [k for k in args if len(args.getlist(k)) > 1]
        if repeated:
            raise InvalidRequest(
                f"query parameter {repeated[0]!r} is given more than once", code="repeated_param"
            )
        from pydantic import ValidationError  # loaded already: `model` is a pydantic model

        try:
            return model.model_validate(dict(args.items()), strict=False)
        except ValidationError as exc:
            raise from_validation(exc, "query") from None

    @property
    def idempotency_key(self) -> str | None:
        """The Idempotency-Key header, if the client sent one."""
        return self.request.headers.get(IDEMPOTENCY_HEADER)

    def if_match(self) -> str:
        """The If-Match header, required for conditional updates."""
        value = self.request.headers.get("If-Match")
        if not value:
            raise PreconditionRequired(
                "this update needs an If-Match header with the ETag of the version it is based on",
                code="if_match_required",
            )
        return value


def _read_json(request: flask.Request, spec: EndpointSpec) -> Any:
    limit = spec.max_body_bytes or settings().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", code="body_too_large")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", code="body_too_large")
    if not raw:
        return None
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json", code="json_required")
    try:
        json_depth.check(raw)
    except json_depth.TooDeep:
        raise InvalidRequest(
            f"the body nests too deeply (at most {json_depth.MAX_DEPTH} levels)", code="invalid_json"
        ) from None
    return json_body.loads(raw)  # duplicate keys, NaN/Infinity and non-int64 integers are 400s


def _route(spec: EndpointSpec, request: flask.Request) -> dict[str, str]:
    match = spec.path_regex.match(request.path)
    if not match:
        raise NotFound(f"no route {request.path}", code="route_not_found")
    if request.method != spec.method:
        raise MethodNotAllowed(f"{request.path} does not accept {request.method}", allow=spec.method)
    return match.groupdict()


def _authenticate(spec: EndpointSpec, request: flask.Request) -> Principal | None:
    if spec.auth_mode == "public":
        return None
    principal = principal_from_header(
        request.headers.get(USERINFO_HEADER), api_key_issuer=settings().api_token_issuer
    )
    guards.check_credential(principal)
    if spec.min_role is not None:
        principal.require(spec.min_role)
    return principal


def _render(reply: Reply) -> tuple[str, int, dict[str, str]]:
    if reply.body is None:
        body = ""
    elif isinstance(reply.body, dict):
        body = json.dumps(reply.body, default=json_default)
    else:
        body = reply.body.model_dump_json()
    return body, reply.status, reply.headers


def _conditional(request: flask.Request, body: str, status: int, headers: dict[str, str]) -> flask.Response:
    """A GET's 200 with a weak ETag of its body, or 304 when If-None-Match names it.

    Pollers (the dashboard, `--wait` loops) send the ETag back and get an empty 304 while nothing
    changed. A handler's own ETag (a prompt version's "vN") is left alone and not matched here.
    """
    if request.method != "GET" or status != 200 or not body or "ETag" in headers:
        return _response(body, status, headers)
    etag = 'W/"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    wanted = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
    if etag in wanted or etag.removeprefix("W/") in wanted:
        response = _response("", 304, headers)
        response.headers["ETag"] = etag
        return response
    return _response(body, status, {**headers, "ETag": etag})


def _response(body: str, status: int, headers: dict[str, str]) -> flask.Response:
    response = flask.Response(body, status=status, headers=headers)
    if body:
        response.content_type = "application/json"
    response.headers["Cache-Control"] = "no-store"
    return response


def _run(call: Call, handler: Callable[[Call], Reply]) -> flask.Response:
    request = call.request
    key = request.headers.get(IDEMPOTENCY_HEADER)
    # The manifest says which POSTs honour the key: those that create something. A pure computation
    # (same body, same answer) needs no record, nor the Firestore client that keeping one costs.
    honoured = IDEMPOTENCY_HEADER in call.spec.headers
    if request.method != "POST" or key is None or call.principal is None or not honoured:
        return _conditional(request, *_render(handler(call)))
    from promptopt.http import idempotency  # only POSTs with a key pay for the Firestore import

    outcome = idempotency.begin(
        tenant=call.principal.tenant,
        function=call.spec.name,
        key=key,
        request_hash=idempotency.fingerprint(request.method, request.path, call._json),
    )
    if isinstance(outcome, idempotency.StoredResponse):
        response = _response(outcome.body, outcome.status, outcome.headers)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        body, status, headers = _render(handler(call))
    except BaseException:
        idempotency.release(outcome)
        raise
    idempotency.complete(outcome, idempotency.StoredResponse(status=status, body=body, headers=headers))
    return _response(body, status, headers)


def _is_backend_busy(error: Exception) -> bool:
    # google.api_core is loaded only by functions that use a GCP client; no client, no such error.
    gexc = sys.modules.get("google.api_core.exceptions")
    busy = () if gexc is None else (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.TooManyRequests)
    return bool(busy) and isinstance(error, busy)


def _unexpected(error: Exception, instance: str) -> flask.Response:
    if _is_backend_busy(error):
        log.warning("backend busy", extra={"fields": {"error": type(error).__name__}})
        problem = problem_body(
            status=503,
            code="backend_unavailable",
            title="Service unavailable",
            detail="a backing service is busy; retry shortly",
            instance=instance,
        )
        return problem_response(problem, {"Retry-After": "2"})
    log.exception("unhandled error")
    problem = problem_body(
        status=500,
        code="internal",
        title="Internal error",
        detail="an unexpected error occurred; it has been logged",
        instance=instance,
    )
    return problem_response(problem)


def serve(request: flask.Request, handler: Callable[[Call], Reply], *, source: str) -> flask.Response:
    """Handle one request for the function whose main.py is `source` (pass `__file__`)."""
    logs.configure()
    trace = logs.trace_from_header(
        request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent")
    )
    logs.bind(trace=trace)
    started = time.perf_counter()
    try:
        spec = endpoint_for_main(source)
        logs.bind(function=spec.name)
        path = _route(spec, request)
        principal = _authenticate(spec, request)
        if principal is not None:
            logs.bind(tenant=principal.tenant)
        if spec.query_model is None and request.args:
            raise InvalidRequest("this endpoint takes no query parameters", code="unknown_query_parameter")
        call = Call(
            request=request, spec=spec, principal=principal, path=path, _json=_read_json(request, spec)
        )
        limit_headers = guards.admit(call)
        response = _run(call, handler)
        response.headers.update(limit_headers)
        guards.audit(call, response, trace)
    except ApiError as error:
        headers = {}
        if "allow" in error.extra:  # 405
            headers["Allow"] = str(error.extra["allow"])
        if "retry_after_s" in error.extra:  # 429/503: when a retry may succeed
            headers["Retry-After"] = str(error.extra["retry_after_s"])
        headers.update(error.headers)
        response = problem_response(from_api_error(error, request.path), headers)
    except Exception as error:  # noqa: BLE001 - the last resort: a problem body, never a bare 500 page
        response = _unexpected(error, request.path)
    status = response.status_code
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        status,
        extra={
            "fields": {
                "httpRequest": {
                    "requestMethod": request.method,
                    "requestUrl": request.path,
                    "status": status,
                    "latency": f"{time.perf_counter() - started:.6f}s",
                }
            }
        },
    )
    logs.clear()
    startup.resume()  # the instance has answered once: collect garbage from here on
    return response
