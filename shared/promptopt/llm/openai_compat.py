"""OpenAI-compatible chat completions (`openai:<model>`) over one pooled httpx.Client.

`POST {base_url}/chat/completions` with a bearer key from `secret("openai_api_key")`.
429/5xx/timeouts are retried a small bounded number of times with exponential backoff and
full jitter (honouring a short Retry-After); then RetryableModelError hands the row back to
the queue. Base URL from `PROMPTOPT_OPENAI_BASE_URL` (default https://api.openai.com/v1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from typing import Any

import httpx

from promptopt import secrets
from promptopt.llm import pricing
from promptopt.llm.types import (
    Completion,
    CompletionRequest,
    EmptyResponseError,
    MalformedResponseError,
    ModelBlockedError,
    ModelConfigError,
    ModelRequestError,
    RetryableModelError,
    Usage,
    ensure_endpoint_allowed,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_SECRET = "openai_api_key"  # noqa: S105 - a secret name, not a value
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 10.0

_lock = threading.Lock()
_http: httpx.Client | None = None


def http_client() -> httpx.Client:
    """The process-wide pooled client (keep-alive across calls and threads)."""
    global _http
    if _http is None:
        with _lock:
            if _http is None:
                _http = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
    return _http


class OpenAICompatProvider:
    """Calls one chat model on an OpenAI-compatible endpoint."""

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_retries: int = 2,
        backoff_s: float = 0.5,
    ) -> None:
        self.name = model_name
        self.model = f"openai:{model_name}"
        self.base_url = (base_url or os.environ.get("PROMPTOPT_OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self._api_key = api_key
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    def complete(self, request: CompletionRequest) -> Completion:
        """Call once (plus bounded retries on transient failures)."""
        ensure_endpoint_allowed(self.base_url, model=self.model)
        headers = {"Authorization": f"Bearer {self._key()}"}
        body = self._body(request)
        started = time.perf_counter()
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = http_client().post(
                    f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=request.timeout_s
                )
            except httpx.TransportError as exc:  # timeouts and connection failures
                if last:
                    raise RetryableModelError(
                        f"{self.model}: {type(exc).__name__}: {exc}", model=self.model
                    ) from exc
                self._sleep(attempt, None)
                continue
            if response.status_code in _RETRY_STATUS:
                if last:
                    raise RetryableModelError(
                        f"{self.model}: HTTP {response.status_code} after {attempt + 1} attempts",
                        model=self.model,
                        status=response.status_code,
                    )
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise ModelRequestError(
                    f"{self.model}: HTTP {response.status_code}: {response.text[:500]}",
                    model=self.model,
                    status=response.status_code,
                )
            return self._completion(response, time.perf_counter() - started)
        raise AssertionError("unreachable")  # pragma: no cover

    def _key(self) -> str:
        if self._api_key is None:
            try:
                self._api_key = secrets.secret(KEY_SECRET)
            except secrets.SecretNotFoundError as exc:
                raise ModelConfigError(f"{self.model}: no API key ({exc})", model=self.model) from None
        return self._api_key

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        messages = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.user_prompt})
        body: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.response_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": request.response_schema},
            }
        return body

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = random.uniform(0, self.backoff_s * 2**attempt)  # noqa: S311 - jitter, not crypto
        if retry_after:
            with contextlib.suppress(ValueError):  # an HTTP date: ignore it, use our own delay
                delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER_S))
        log.info("%s: transient failure, retry %d in %.2fs", self.model, attempt + 1, delay)
        time.sleep(delay)

    def _completion(self, response: httpx.Response, latency: float) -> Completion:
        try:
            payload = response.json()
            choices = payload.get("choices")
            usage_raw = payload.get("usage") or {}
        except (ValueError, AttributeError) as exc:
            raise MalformedResponseError(
                f"{self.model}: unparseable response: {exc}", model=self.model
            ) from None
        if not choices:
            raise EmptyResponseError(f"{self.model}: no choices", model=self.model)
        try:
            choice = choices[0]
            finish = str(choice.get("finish_reason") or "stop")
            text = (choice.get("message") or {}).get("content") or ""
            usage = Usage(int(usage_raw.get("prompt_tokens", 0)), int(usage_raw.get("completion_tokens", 0)))
        except (AttributeError, TypeError, ValueError) as exc:
            raise MalformedResponseError(
                f"{self.model}: unexpected response shape: {exc}", model=self.model
            ) from None
        if finish == "content_filter":
            raise ModelBlockedError(f"{self.model}: answer filtered", reason=finish, model=self.model)
        if not str(text).strip():
            raise EmptyResponseError(f"{self.model}: empty text (finish reason {finish})", model=self.model)
        return Completion(
            text=str(text),
            usage=usage,
            cost_usd=pricing.cost(self.model, usage),
            latency_s=latency,
            model=self.model,
            finish_reason=finish,
        )


def reset() -> None:
    """Close and forget the pooled client (tests)."""
    global _http
    with _lock:
        if _http is not None:
            _http.close()
        _http = None
