"""Gemini on Vertex AI through google-genai (`Client(vertexai=True)`).

google-genai is imported lazily (about 0.3 s of cold start) and one client is cached per
(project, location, base_url, token, retry policy), created under a lock because
functions-framework serves requests from several threads. The SDK retries 429/5xx/timeouts
itself (bounded, exponential backoff with jitter); whatever is still failing after that becomes
RetryableModelError so the task queue retries later.

Configuration (constructor arguments win over env):
- `PROMPTOPT_GEMINI_LOCATION` (default `us-central1`), project from promptopt settings;
- `PROMPTOPT_GEMINI_BASE_URL`: a custom endpoint, e.g. the local fake server in tests;
- `PROMPTOPT_GEMINI_ACCESS_TOKEN`: a static bearer token instead of ADC (fakes only; real
  deployments use the function's service account through ADC);
- `PROMPTOPT_GEMINI_RETRY_ATTEMPTS` / `_RETRY_INITIAL_DELAY_S` / `_RETRY_MAX_DELAY_S`;
- `PROMPTOPT_GEMINI_EMBEDDING_MODEL`: the embedding model `embed` uses by default
  (`text-embedding-005`).

Embeddings go through `client.models.embed_content`, which on Vertex calls `:predict` for
`text-embedding-*` models and `:embedContent` / `:batchEmbedContents` for `gemini-embedding-*`.
Vertex takes at most 250 texts and 20,000 input tokens per request (each text is truncated at
2,048 tokens), so texts are sent in batches under both limits.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptopt.backoff import TRANSIENT_STATUSES
from promptopt.config import settings
from promptopt.llm import pricing
from promptopt.llm.types import (
    Completion,
    CompletionRequest,
    EmbeddingResult,
    EmptyResponseError,
    MalformedResponseError,
    ModelBlockedError,
    ModelRequestError,
    RetryableModelError,
    Usage,
    batches,
    embedding_model_name,
    ensure_endpoint_allowed,
)

if TYPE_CHECKING:
    from google import genai

log = logging.getLogger(__name__)

# Candidate finish reasons that mean "withheld for policy", not "ran out of tokens".
_BLOCK_FINISH_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"})
DEFAULT_EMBEDDING_MODEL = "text-embedding-005"
# Vertex embedding limits per request; gemini-embedding-* batches are kept smaller (100, as the
# Gemini API's batchEmbedContents allows) since their batch endpoint is the newer one.
_EMBED_MAX_ITEMS = 250
_EMBED_MAX_ITEMS_GEMINI = 100
_EMBED_MAX_TOKENS = 20_000
_EMBED_MAX_TOKENS_PER_TEXT = 2_048

_lock = threading.Lock()
_clients: dict[tuple[Any, ...], genai.Client] = {}


@dataclass(frozen=True)
class RetryPolicy:
    """SDK-level retries: attempts include the first call; delays in seconds."""

    attempts: int = 4
    initial_delay_s: float = 1.0
    max_delay_s: float = 16.0
    exp_base: float = 2.0
    jitter: float = 1.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The policy from `PROMPTOPT_GEMINI_RETRY_*`, defaults otherwise."""
        env = os.environ
        return cls(
            attempts=int(env.get("PROMPTOPT_GEMINI_RETRY_ATTEMPTS", cls.attempts)),
            initial_delay_s=float(env.get("PROMPTOPT_GEMINI_RETRY_INITIAL_DELAY_S", cls.initial_delay_s)),
            max_delay_s=float(env.get("PROMPTOPT_GEMINI_RETRY_MAX_DELAY_S", cls.max_delay_s)),
        )


class GeminiProvider:
    """Calls one Gemini model (`gemini:<model>`) on Vertex AI."""

    def __init__(
        self,
        model_name: str,
        *,
        project: str | None = None,
        location: str | None = None,
        base_url: str | None = None,
        access_token: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = model_name
        self.model = f"gemini:{model_name}"
        self.project = project or settings().project_id
        self.location = location or os.environ.get("PROMPTOPT_GEMINI_LOCATION", "us-central1")
        self.base_url = base_url or os.environ.get("PROMPTOPT_GEMINI_BASE_URL") or None
        self.access_token = access_token or os.environ.get("PROMPTOPT_GEMINI_ACCESS_TOKEN") or None
        self.retry = retry or RetryPolicy.from_env()
        self.embedding_model = os.environ.get("PROMPTOPT_GEMINI_EMBEDDING_MODEL") or DEFAULT_EMBEDDING_MODEL

    def complete(self, request: CompletionRequest) -> Completion:
        """Generate once; maps SDK failures onto the ModelError hierarchy."""
        from google.genai import errors, types

        client = self._client()
        config = types.GenerateContentConfig(
            system_instruction=request.system_prompt or None,
            temperature=request.temperature,
            max_output_tokens=request.max_tokens,
            http_options=types.HttpOptions(timeout=max(1, int(request.timeout_s * 1000))),
        )
        if request.response_schema is not None:
            config.response_mime_type = "application/json"
            config.response_json_schema = request.response_schema
        started = time.perf_counter()
        try:
            response = client.models.generate_content(
                model=self.name, contents=request.user_prompt, config=config
            )
        except errors.APIError as exc:
            raise self._api_error(exc) from exc
        except _transient_errors() as exc:
            raise RetryableModelError(f"{self.model}: {type(exc).__name__}: {exc}", model=self.model) from exc
        except (json.JSONDecodeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise MalformedResponseError(
                f"{self.model}: unparseable response: {exc}", model=self.model
            ) from exc
        latency = time.perf_counter() - started
        return self._completion(response, latency)

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        task_type: str | None = None,
        timeout_s: float = 60.0,
    ) -> EmbeddingResult:
        """Embed texts with a Vertex embedding model, batched under Vertex's per-request limits."""
        from google.genai import errors, types

        name = embedding_model_name("gemini", self.name, model, self.embedding_model)
        model_id = f"gemini:{name}"
        client = self._client()
        config = types.EmbedContentConfig(
            task_type=task_type,
            http_options=types.HttpOptions(timeout=max(1, int(timeout_s * 1000))),
        )
        max_items = _EMBED_MAX_ITEMS_GEMINI if "gemini" in name else _EMBED_MAX_ITEMS
        vectors: list[list[float]] = []
        tokens = characters = calls = 0
        started = time.perf_counter()
        for batch in batches(
            texts,
            max_items=max_items,
            max_tokens=_EMBED_MAX_TOKENS,
            max_tokens_per_text=_EMBED_MAX_TOKENS_PER_TEXT,
        ):
            try:
                response = client.models.embed_content(model=name, contents=list(batch), config=config)
            except errors.APIError as exc:
                raise self._api_error(exc, model_id) from exc
            except _transient_errors() as exc:
                raise RetryableModelError(f"{model_id}: {type(exc).__name__}: {exc}", model=model_id) from exc
            except (json.JSONDecodeError, ValueError) as exc:
                raise MalformedResponseError(
                    f"{model_id}: unparseable response: {exc}", model=model_id
                ) from exc
            calls += 1
            found, batch_tokens, batch_characters = _embeddings(response, batch, model_id)
            vectors += found
            tokens += batch_tokens
            characters += batch_characters
        usage = Usage(input_tokens=tokens, input_characters=characters)
        return EmbeddingResult(
            vectors=vectors,
            usage=usage,
            cost_usd=pricing.cost(model_id, usage),
            latency_s=time.perf_counter() - started,
            model=model_id,
            calls=calls,
        )

    def _completion(self, response: Any, latency: float) -> Completion:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = _enum_name(feedback.block_reason)
            raise ModelBlockedError(
                f"{self.model}: prompt blocked ({reason})", reason=reason, model=self.model
            )
        if not response.candidates:
            raise EmptyResponseError(f"{self.model}: no candidates", model=self.model)
        candidate = response.candidates[0]
        finish = _enum_name(candidate.finish_reason) if candidate.finish_reason is not None else "STOP"
        if finish in _BLOCK_FINISH_REASONS:
            raise ModelBlockedError(
                f"{self.model}: answer withheld ({finish})", reason=finish, model=self.model
            )
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(part.text for part in parts if part.text and not part.thought)
        if not text.strip():
            raise EmptyResponseError(f"{self.model}: empty text (finish reason {finish})", model=self.model)
        meta = response.usage_metadata
        usage = Usage(
            input_tokens=(meta.prompt_token_count or 0) if meta else 0,
            # Thinking tokens are billed as output.
            output_tokens=((meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0))
            if meta
            else 0,
        )
        return Completion(
            text=text,
            usage=usage,
            cost_usd=pricing.cost(self.model, usage),
            latency_s=latency,
            model=self.model,
            finish_reason=finish,
        )

    def _api_error(self, exc: Any, model: str | None = None) -> Exception:
        model = model or self.model
        status = int(exc.code or 0)
        message = f"{model}: HTTP {status}: {exc.message or exc.status or ''}".strip()
        if status in TRANSIENT_STATUSES or status >= 500:
            log.warning("gemini call failed after %d attempts: %s", self.retry.attempts, message)
            return RetryableModelError(message, model=model, status=status)
        return ModelRequestError(message, model=model, status=status)

    def _client(self) -> genai.Client:
        ensure_endpoint_allowed(self.base_url, model=self.model)
        key = (self.project, self.location, self.base_url, self.access_token, self.retry)
        client = _clients.get(key)
        if client is None:
            with _lock:
                client = _clients.get(key)
                if client is None:
                    client = _make_client(
                        self.project, self.location, self.base_url, self.access_token, self.retry
                    )
                    _clients[key] = client
        return client


def _make_client(
    project: str, location: str, base_url: str | None, access_token: str | None, retry: RetryPolicy
) -> genai.Client:
    from google import genai
    from google.genai import types

    credentials = None
    if access_token:
        # A static token needs no ADC and never refreshes (no expiry): for fakes and tests.
        from google.oauth2.credentials import Credentials

        credentials = Credentials(token=access_token)
    http_options = types.HttpOptions(
        base_url=base_url,
        retry_options=types.HttpRetryOptions(
            attempts=retry.attempts,
            initial_delay=retry.initial_delay_s,
            max_delay=retry.max_delay_s,
            exp_base=retry.exp_base,
            jitter=retry.jitter,
            http_status_codes=sorted(TRANSIENT_STATUSES),
        ),
    )
    log.info("creating google-genai client project=%s location=%s base_url=%s", project, location, base_url)
    return genai.Client(
        vertexai=True, project=project, location=location, credentials=credentials, http_options=http_options
    )


def _embeddings(response: Any, batch: Sequence[str], model: str) -> tuple[list[list[float]], int, int]:
    """Vectors, input tokens and billable characters of one embed_content response."""
    found = response.embeddings or []
    if len(found) != len(batch) or any(not item.values for item in found):
        raise MalformedResponseError(f"{model}: {len(found)} embeddings for {len(batch)} texts", model=model)
    counts = [item.statistics.token_count for item in found if item.statistics is not None]
    meta = response.usage_metadata
    if counts:  # :predict and :embedContent report tokens per text
        tokens = int(sum(c or 0 for c in counts))
    elif meta is not None and meta.prompt_token_count is not None:
        tokens = int(meta.prompt_token_count)
    else:  # nothing reported: estimate (about 4 characters a token) rather than count it free
        tokens = sum(max(1, len(text) // 4) for text in batch)
    billed = response.metadata.billable_character_count if response.metadata is not None else None
    characters = int(billed) if billed is not None else sum(len(text) for text in batch)
    return [list(item.values) for item in found], tokens, characters


def _transient_errors() -> tuple[type[BaseException], ...]:
    import httpx

    found: list[type[BaseException]] = [httpx.TimeoutException, httpx.TransportError]
    try:
        import httpx2  # google-genai may use this fork of httpx

        found += [httpx2.TimeoutException, httpx2.TransportError]
    except ImportError:
        pass
    return tuple(found)


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", None) or getattr(value, "value", None) or value)


def reset() -> None:
    """Drop cached clients (tests point them at fresh fake servers)."""
    with _lock:
        _clients.clear()
