"""OpenAI-compatible chat completions (`openai:<model>`) over one pooled httpx.Client.

`POST {base_url}/chat/completions` (and `POST {base_url}/embeddings` for `embed`) with a bearer
key from `secret("openai_api_key")`.
429/5xx/timeouts are retried a small bounded number of times with exponential backoff and
full jitter (honouring a short Retry-After); then RetryableModelError hands the row back to
the queue. Base URL from `PROMPTOPT_OPENAI_BASE_URL` (default https://api.openai.com/v1); the
default embedding model from `PROMPTOPT_OPENAI_EMBEDDING_MODEL` (default text-embedding-3-small).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from promptopt import secrets
from promptopt.backoff import TRANSIENT_STATUSES, Backoff
from promptopt.llm import pricing
from promptopt.llm.types import (
    Completion,
    CompletionRequest,
    EmbeddingResult,
    EmptyResponseError,
    MalformedResponseError,
    ModelBlockedError,
    ModelConfigError,
    ModelRequestError,
    RetryableModelError,
    Usage,
    batches,
    embedding_model_name,
    ensure_endpoint_allowed,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_SECRET = "openai_api_key"  # noqa: S105 - a secret name, not a value
_MAX_RETRY_AFTER_S = 10.0
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
# OpenAI takes up to 2,048 inputs and 300k tokens per request and refuses (not truncates) an
# input over 8,192 tokens; compatible servers are often stricter, so batches stay well below.
_EMBED_MAX_ITEMS = 256
_EMBED_MAX_TOKENS = 100_000
_EMBED_MAX_TOKENS_PER_TEXT = 8_192

_lock = threading.Lock()
_http: httpx.Client | None = None


def http_client() -> httpx.Client:
    """The process-wide pooled client (keep-alive across calls and threads)."""
    global _http
    if _http is None:
        with _lock:
            if _http is None:
                # Keep every connection a chunk's 32 concurrent calls (x requests per instance)
                # open: a smaller idle pool re-opens ~90% of them, a TLS handshake each.
                _http = httpx.Client(limits=httpx.Limits(max_connections=128, max_keepalive_connections=128))
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
        self.embedding_model = os.environ.get("PROMPTOPT_OPENAI_EMBEDDING_MODEL") or DEFAULT_EMBEDDING_MODEL

    def complete(self, request: CompletionRequest) -> Completion:
        """Call once (plus bounded retries on transient failures)."""
        started = time.perf_counter()
        response = self._post("/chat/completions", self._body(request), request.timeout_s, self.model)
        return self._completion(response, time.perf_counter() - started)

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        task_type: str | None = None,
        timeout_s: float = 60.0,
    ) -> EmbeddingResult:
        """Embed texts through `POST /embeddings` in batches (`task_type` is not an OpenAI notion)."""
        name = embedding_model_name("openai", self.name, model, self.embedding_model)
        model_id = f"openai:{name}"
        vectors: list[list[float]] = []
        tokens = calls = 0
        started = time.perf_counter()
        for batch in batches(
            texts,
            max_items=_EMBED_MAX_ITEMS,
            max_tokens=_EMBED_MAX_TOKENS,
            max_tokens_per_text=_EMBED_MAX_TOKENS_PER_TEXT,
        ):
            body = {"model": name, "input": batch, "encoding_format": "float"}
            response = self._post("/embeddings", body, timeout_s, model_id)
            calls += 1
            found, used = _embeddings(response, len(batch), model_id)
            vectors += found
            tokens += used
        usage = Usage(input_tokens=tokens, input_characters=sum(len(t) for t in texts))
        return EmbeddingResult(
            vectors=vectors,
            usage=usage,
            cost_usd=pricing.cost(model_id, usage),
            latency_s=time.perf_counter() - started,
            model=model_id,
            calls=calls,
        )

    def _post(self, path: str, body: dict[str, Any], timeout_s: float, model: str) -> httpx.Response:
        """POST with bounded retries on 408/429/5xx and transport errors; 4xx is final."""
        ensure_endpoint_allowed(self.base_url, model=model)
        headers = {"Authorization": f"Bearer {self._key()}"}
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = http_client().post(
                    f"{self.base_url}{path}", json=body, headers=headers, timeout=timeout_s
                )
            except httpx.TransportError as exc:  # timeouts and connection failures
                if last:
                    raise RetryableModelError(f"{model}: {type(exc).__name__}: {exc}", model=model) from exc
                self._sleep(attempt, None)
                continue
            if response.status_code in TRANSIENT_STATUSES:
                if last:
                    raise RetryableModelError(
                        f"{model}: HTTP {response.status_code} after {attempt + 1} attempts",
                        model=model,
                        status=response.status_code,
                    )
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise ModelRequestError(
                    f"{model}: HTTP {response.status_code}: {response.text[:500]}",
                    model=model,
                    status=response.status_code,
                )
            return response
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
        policy = Backoff(
            initial_s=self.backoff_s, max_s=60.0, jitter=True, max_retry_after_s=_MAX_RETRY_AFTER_S
        )
        delay = policy.delay(attempt, retry_after)
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


def _embeddings(response: httpx.Response, expected: int, model: str) -> tuple[list[list[float]], int]:
    """Vectors (ordered by `index`) and prompt tokens of one /embeddings response."""
    try:
        payload = response.json()
        rows = sorted(payload["data"], key=lambda row: int(row["index"]))
        vectors = [[float(x) for x in row["embedding"]] for row in rows]
        tokens = int((payload.get("usage") or {}).get("prompt_tokens", 0))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedResponseError(f"{model}: unexpected embeddings response: {exc}", model=model) from None
    if len(vectors) != expected or any(not v for v in vectors):
        raise MalformedResponseError(f"{model}: {len(vectors)} embeddings for {expected} texts", model=model)
    return vectors, tokens


def reset() -> None:
    """Close and forget the pooled client (tests)."""
    global _http
    with _lock:
        if _http is not None:
            _http.close()
        _http = None
