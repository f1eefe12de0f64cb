"""Provider-neutral request, response and error types for model calls.

Errors are split by what the caller should do: `RetryableModelError` goes back to the queue
(Cloud Tasks retries with backoff), every other `ModelError` is final for that row.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

FORBID_ENV = "PROMPTOPT_FORBID_REAL_MODELS"
DEADLINE_MARGIN_S = 5.0
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Usage(NamedTuple):
    """Tokens billed for one call (and input characters, which some embedding models bill instead)."""

    input_tokens: int = 0
    output_tokens: int = 0
    input_characters: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class CompletionRequest:
    """One single-turn model call: a system prompt, a user prompt and sampling limits."""

    user_prompt: str
    system_prompt: str = ""
    temperature: float = 0.0
    max_tokens: int = 1024
    response_schema: dict[str, Any] | None = None
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be within [0, 2], got {self.temperature}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {self.max_tokens}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")


class Completion(NamedTuple):
    """A model's answer with what it cost."""

    text: str
    usage: Usage
    cost_usd: float
    latency_s: float
    model: str
    finish_reason: str


class EmbeddingResult(NamedTuple):
    """One vector per input text (in input order) with what the calls cost."""

    vectors: list[list[float]]
    usage: Usage
    cost_usd: float
    latency_s: float
    model: str
    calls: int = 1


class Provider(Protocol):
    """Anything that completes prompts and embeds texts for one model id."""

    model: str

    def complete(self, request: CompletionRequest) -> Completion:
        """Call the model once; raises a ModelError subclass on failure."""
        ...

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        task_type: str | None = None,
        timeout_s: float = 60.0,
    ) -> EmbeddingResult:
        """Embed `texts` (batched as the provider allows); raises a ModelError subclass on failure.

        `model` names the embedding model (bare, or with this provider's prefix); None means the
        provider's own model when it is an embedding model, else the provider's default one.
        `task_type` is a hint only some providers use (Vertex: e.g. SEMANTIC_SIMILARITY).
        """
        ...


class ModelError(Exception):
    """Base class of every model-call failure."""

    def __init__(self, message: str, *, model: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.status = status


class RetryableModelError(ModelError):
    """A transient failure (429, 5xx, timeout) that survived our bounded retries: retry later."""


class ModelBlockedError(ModelError):
    """The model refused the prompt or its answer on safety grounds."""

    def __init__(self, message: str, *, reason: str, model: str = "", status: int | None = None) -> None:
        super().__init__(message, model=model, status=status)
        self.reason = reason


class EmptyResponseError(ModelError):
    """The model answered with no candidates or no text."""


class MalformedResponseError(ModelError):
    """The response could not be parsed."""


class ModelRequestError(ModelError):
    """A permanent rejection of this request (4xx other than 408/429): retrying cannot help."""


class ModelConfigError(ModelError):
    """The model id or provider configuration is unusable (unknown provider, missing key, forbidden URL)."""


def ensure_endpoint_allowed(base_url: str | None, *, model: str = "") -> None:
    """Refuse non-local endpoints when PROMPTOPT_FORBID_REAL_MODELS=1 (the tests' guard).

    `None` means the provider's real default endpoint, which is never local.
    """
    if os.environ.get(FORBID_ENV, "") not in ("1", "true", "yes"):
        return
    host = urlsplit(base_url).hostname if base_url else None
    if host not in _LOCAL_HOSTS:
        raise ModelConfigError(
            f"real model endpoint {base_url or '(provider default)'} refused: {FORBID_ENV} is set",
            model=model,
        )


def batches(
    texts: Sequence[str], *, max_items: int, max_tokens: int, max_tokens_per_text: int
) -> Iterator[list[str]]:
    """Split `texts` into request-sized batches by count and by a conservative token estimate.

    The estimate is UTF-8 bytes / 3 (about one token per CJK character, under one per three
    ASCII characters), capped at what the provider reads of one text, so a batch never exceeds
    a per-request token limit that would make the whole request fail.
    """
    batch: list[str] = []
    tokens = 0
    for text in texts:
        estimate = min(max_tokens_per_text, max(1, math.ceil(len(text.encode()) / 3)))
        if batch and (len(batch) >= max_items or tokens + estimate > max_tokens):
            yield batch
            batch, tokens = [], 0
        batch.append(text)
        tokens += estimate
    if batch:
        yield batch


def embedding_model_name(provider: str, own_name: str, requested: str | None, default: str) -> str:
    """The bare embedding model name a provider should call (see Provider.embed's `model`)."""
    if requested is None:
        return own_name if "embed" in own_name.lower() else default
    prefix, sep, name = requested.partition(":")
    if not sep:
        return requested
    if prefix != provider or not name:
        raise ModelConfigError(
            f"embedding model {requested!r} is not a {provider} model", model=f"{provider}:{own_name}"
        )
    return name


def deadline_for(function_timeout_s: float) -> float:
    """The model calls' deadline inside a function with this timeout (30 s -> 25 s)."""
    return max(1.0, function_timeout_s - min(DEADLINE_MARGIN_S, function_timeout_s / 6))
