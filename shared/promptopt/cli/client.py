"""A small synchronous client for the promptopt HTTP API, built on httpx.

Each method returns an `ApiResponse` (parsed JSON body, status, headers) or raises `ApiError`
(a problem+json answer) or `TransportError` (no usable answer: refused, timed out, broken).

Retries: connection errors, timeouts and 429/502/503/504 are retried up to `retries` times with
a small exponential backoff (honouring a short Retry-After). A create reuses one Idempotency-Key
across its attempts, so a retry after a lost response replays the first answer instead of making a
second prompt; a create whose first attempt is still running (409 idempotency_in_progress) is
retried too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from promptopt.cli.retries import call_with_retries

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


@dataclass(eq=False)
class ApiError(Exception):
    """The API answered with an error (a problem+json document, or something shaped like one)."""

    status: int
    problem: dict[str, Any]
    method: str
    url: str
    attempts: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        """The human explanation."""
        return str(self.problem.get("detail") or self.problem.get("title") or f"HTTP {self.status}")

    @property
    def code(self) -> str:
        """The stable machine code."""
        return str(self.problem.get("code") or f"http_{self.status}")

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        """Per-field validation errors ({loc, msg, type}), if any."""
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


@dataclass(eq=False)
class TransportError(Exception):
    """No usable answer from the API: connection refused, DNS failure, timeout, broken connection."""

    kind: str  # "connect" | "timeout" | "network"
    url: str
    reason: str
    attempts: int = 1

    def __post_init__(self) -> None:
        super().__init__(f"{self.kind}: {self.reason}")


def _problem_from(response: httpx.Response) -> dict[str, Any]:
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
    except ValueError:  # an HTTP-date: not worth parsing for a CLI, use our own backoff
        return 0.0


def _segment(value: str) -> str:
    """One URL path segment, escaped so an id can never change the route."""
    return quote(value, safe="")


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class ApiClient:
    """Calls the promptopt API at `base_url` with an optional bearer token."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        user_agent: str = "promptopt-cli",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, retries)
        headers = {"User-Agent": user_agent, "Accept": "application/json, application/problem+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
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

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------------------

    def health(self) -> ApiResponse:
        """GET /api/v1/health (public)."""
        return self._request("GET", "/health")

    def exchange_api_key(self, api_key: str) -> ApiResponse:
        """POST /api/v1/auth/token (public): a short-lived token for an API key."""
        return self._request("POST", "/auth/token", json={"api_key": api_key})

    def me(self) -> ApiResponse:
        """GET /api/v1/me: who the API takes the caller to be."""
        return self._request("GET", "/me")

    def create_api_key(self, body: Mapping[str, Any]) -> ApiResponse:
        """POST /api/v1/api-keys (admin): the answer holds the secret, once."""
        return self._request("POST", "/api-keys", json=dict(body))

    def list_api_keys(self) -> ApiResponse:
        """GET /api/v1/api-keys (admin)."""
        return self._request("GET", "/api-keys")

    def revoke_api_key(self, key_id: str) -> ApiResponse:
        """DELETE /api/v1/api-keys/{key_id} (admin)."""
        return self._request("DELETE", f"/api-keys/{_segment(key_id)}")

    def create_prompt(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> ApiResponse:
        """POST /api/v1/prompts with an Idempotency-Key (a fresh random one unless given)."""
        key = idempotency_key or str(uuid.uuid4())
        return self._request("POST", "/prompts", json=dict(body), headers={"Idempotency-Key": key})

    def get_prompt(
        self, prompt_id: str, *, version: int | None = None, label: str | None = None
    ) -> ApiResponse:
        """GET /api/v1/prompts/{id}: the latest version, or one by number or label."""
        return self._request(
            "GET", f"/prompts/{_segment(prompt_id)}", params=_clean({"version": version, "label": label})
        )

    def update_prompt(self, prompt_id: str, body: Mapping[str, Any], *, if_match: str) -> ApiResponse:
        """PUT /api/v1/prompts/{id}: the next version, based on the version `if_match` names."""
        return self._request(
            "PUT", f"/prompts/{_segment(prompt_id)}", json=dict(body), headers={"If-Match": if_match}
        )

    def list_prompts(
        self,
        *,
        name: str | None = None,
        label: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ApiResponse:
        """GET /api/v1/prompts: one page of prompts, newest first."""
        params = _clean({"name": name, "label": label, "page_size": page_size, "page_token": page_token})
        return self._request("GET", "/prompts", params=params)

    def list_versions(
        self, prompt_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> ApiResponse:
        """GET /api/v1/prompts/{id}/versions: one page of versions, newest first, with the labels."""
        params = _clean({"page_size": page_size, "page_token": page_token})
        return self._request("GET", f"/prompts/{_segment(prompt_id)}/versions", params=params)

    def set_label(self, prompt_id: str, label: str, version: int) -> ApiResponse:
        """PUT /api/v1/prompts/{id}/labels/{label}: point the label at a version."""
        path = f"/prompts/{_segment(prompt_id)}/labels/{_segment(label)}"
        return self._request("PUT", path, json={"version": version})

    def remove_label(self, prompt_id: str, label: str) -> ApiResponse:
        """DELETE /api/v1/prompts/{id}/labels/{label}."""
        return self._request("DELETE", f"/prompts/{_segment(prompt_id)}/labels/{_segment(label)}")

    def evaluate(self, body: Mapping[str, Any]) -> ApiResponse:
        """POST /api/v1/evaluate: score predictions against references (nothing is stored)."""
        return self._request("POST", "/evaluate", json=dict(body))

    def complete(self, body: Mapping[str, Any]) -> ApiResponse:
        """POST /api/v1/inference/complete: one model call for a prompt and its inputs."""
        key = str(uuid.uuid4())  # a retry after a lost answer must not pay for a second call
        return self._request("POST", "/inference/complete", json=dict(body), headers={"Idempotency-Key": key})

    # -- transport ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """Call `path` under /api/v1 with the client's token and retries.

        A POST that carries an Idempotency-Key is retried with the same key; others only when
        nothing reached the server.
        """
        return self._request(method, path, params=params, json=json, headers=headers)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        url = f"{self.base_url}{API_PREFIX}{path}"
        idempotent_post = method == "POST" and headers is not None and "Idempotency-Key" in headers

        def attempt(number: int) -> tuple[httpx.Response, int]:
            try:
                # The same headers (so the same Idempotency-Key) go out on every attempt.
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

        response, attempts = call_with_retries(
            attempt,
            retries=self.retries,
            retry_result=lambda answer: self._retryable(answer[0], idempotent_post),
            retry_error=TransportError,
            wait_hint=lambda answer: _retry_after(answer[0]),
        )
        return self._finish(response, method, url, attempts)

    @staticmethod
    def _retryable(response: httpx.Response, idempotent_post: bool) -> bool:
        if response.status_code in RETRY_STATUSES:
            return True
        if idempotent_post and response.status_code == 409:
            return _problem_from(response).get("code") == IDEMPOTENCY_IN_PROGRESS
        return False

    @staticmethod
    def _finish(response: httpx.Response, method: str, url: str, attempts: int) -> ApiResponse:
        if response.is_success:
            try:
                body = response.json() if response.content else None
            except ValueError:
                problem = {
                    "detail": f"the answer from {url} is not JSON; is this the promptopt API?",
                    "code": "invalid_response",
                }
                raise ApiError(
                    response.status_code, problem, method, url, attempts, response.headers
                ) from None
            return ApiResponse(status=response.status_code, body=body, headers=response.headers)
        raise ApiError(
            status=response.status_code,
            problem=_problem_from(response),
            method=method,
            url=url,
            attempts=attempts,
            headers=response.headers,
        )
