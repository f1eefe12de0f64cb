"""The one HTTP client of promptopt: the typed `Client` and the CLI both send every API call here.

`HttpClient.request` calls a path under /api/v1 and returns an `ApiResponse` (parsed JSON body,
status, headers) or raises a typed `ApiError` (a problem+json answer, by class of problem) or a
`TransportError` (no usable answer: refused, timed out, broken).

Retries: connection errors, timeouts and 429/502/503/504 are retried up to `retries` times with a
small exponential backoff (honouring a short Retry-After). A POST sends one Idempotency-Key on
every attempt, so a retry after a lost response replays the first answer instead of creating
twice; a create whose first attempt is still running (409 idempotency_in_progress) is retried too.
A 401 makes the credentials refresh once (an API key is exchanged again, a dev token re-minted).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from promptopt.client import retries
from promptopt.client.errors import ApiError, TransportError, error_class

if TYPE_CHECKING:
    from promptopt.client.auth import Credentials

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: A server's Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER_S = 10.0
IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"


@dataclass
class ApiResponse:
    """A successful answer: status, parsed JSON body (None when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def etag(self) -> str | None:
        """The ETag header, if the API sent one."""
        return self.headers.get("etag")

    @property
    def replayed(self) -> bool:
        """True when the answer is the replay of an earlier request with the same Idempotency-Key."""
        return self.headers.get("idempotent-replayed") == "true"


def problem_from(response: httpx.Response) -> dict[str, Any]:
    """The problem document of an error answer, or one made from its status and text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("detail" in body or "code" in body or "title" in body):
        return body
    text = " ".join(response.text.split())[:200]
    return {
        "status": response.status_code,
        "title": response.reason_phrase,
        "detail": text or response.reason_phrase or f"HTTP {response.status_code}",
        "code": f"http_{response.status_code}",
    }


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", "0")), MAX_RETRY_AFTER_S)
    except ValueError:  # an HTTP-date: not worth parsing, use our own backoff
        return 0.0


def segment(value: str | int) -> str:
    """One URL path segment, escaped so an id can never change the route."""
    return quote(str(value), safe="")


def clean(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the ones left out (None)."""
    return {k: v for k, v in params.items() if v is not None}


class HttpClient:
    """Calls the promptopt API at `base_url` with the given credentials, retries and timeout.

    `token` is a shortcut for a fixed bearer token; `credentials` (see `promptopt.client.auth`)
    take precedence. `transport` replaces httpx's network transport (tests pass one that reaches
    the function apps in-process).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        credentials: Credentials | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        user_agent: str = "promptopt-client",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from promptopt.client.auth import BearerToken

        self.base_url = base_url.rstrip("/")
        self.retries = max(0, retries)
        self.timeout_s = timeout_s
        self.transport = transport
        self.credentials: Credentials | None = credentials or (BearerToken(token) if token else None)
        headers = {"User-Agent": user_agent, "Accept": "application/json, application/problem+json"}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout_s,
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> ApiResponse:
        """Call `path` under /api/v1 with the client's credentials and retries.

        Every attempt sends the same headers, so a POST's Idempotency-Key is the same on each.
        `authenticate=False` sends no Authorization header (the API-key exchange itself).
        """
        sent = dict(headers or {})
        credentials = self.credentials if authenticate else None
        if credentials is not None:
            authorization = credentials.authorization(self)
            if authorization:
                sent["Authorization"] = authorization
        try:
            return self._send(method, path, params=params, json=json, headers=sent)
        except ApiError as error:
            # A token that expired or was revoked between calls: refresh once, then try again.
            if credentials is None or error.status != 401 or not credentials.refresh():
                raise
        sent["Authorization"] = credentials.authorization(self) or ""
        return self._send(method, path, params=params, json=json, headers=sent)

    def post(
        self, path: str, body: Any = None, *, idempotency_key: str | None = None, **kw: Any
    ) -> ApiResponse:
        """POST with an Idempotency-Key (a fresh random one unless given), reused on every retry."""
        headers = {**kw.pop("headers", {}), "Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self.request("POST", path, json=body, headers=headers, **kw)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str],
    ) -> ApiResponse:
        url = f"{self.base_url}{API_PREFIX}{path}"
        idempotent_post = method == "POST" and "Idempotency-Key" in headers

        def attempt(number: int) -> tuple[httpx.Response, int]:
            try:
                response = self._http.request(
                    method, API_PREFIX + path, params=params, json=json, headers=headers
                )
            except httpx.ConnectError as exc:
                raise TransportError("connect", url, str(exc) or "connection failed", number) from None
            except httpx.TimeoutException as exc:
                raise TransportError("timeout", url, str(exc) or type(exc).__name__, number) from None
            except httpx.TransportError as exc:
                raise TransportError("network", url, str(exc) or type(exc).__name__, number) from None
            return response, number

        response, attempts = retries.call_with_retries(
            attempt,
            retries=self.retries,
            retry_result=lambda answer: _retryable(answer[0], idempotent_post),
            retry_error=TransportError,
            wait_hint=lambda answer: _retry_after(answer[0]),
        )
        return _finish(response, method, url, attempts)


def _retryable(response: httpx.Response, idempotent_post: bool) -> bool:
    if response.status_code in RETRY_STATUSES:
        return True
    if idempotent_post and response.status_code == 409:
        return problem_from(response).get("code") == IDEMPOTENCY_IN_PROGRESS
    return False


def _finish(response: httpx.Response, method: str, url: str, attempts: int) -> ApiResponse:
    if response.is_success:
        try:
            body = response.json() if response.content else None
        except ValueError:
            problem = {
                "detail": f"the answer from {url} is not JSON; is this the promptopt API?",
                "code": "invalid_response",
            }
            raise ApiError(response.status_code, problem, method, url, attempts, response.headers) from None
        return ApiResponse(status=response.status_code, body=body, headers=response.headers)
    raise error_class(response.status_code)(
        status=response.status_code,
        problem=problem_from(response),
        method=method,
        url=url,
        attempts=attempts,
        headers=response.headers,
    )
