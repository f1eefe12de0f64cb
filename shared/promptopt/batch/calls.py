"""One model call of a batch row, its failure classified by what the chunk should do about it.

- retryable (429, 5xx, timeouts, anything unexpected): the row stays pending and the task fails,
  so Cloud Tasks retries it later with backoff (on the last attempt it becomes a terminal failure);
- permanent (the provider refused this request, blocked it, answered nothing usable, or the model
  is not configured): the row is recorded as failed and the chunk goes on without it.

Messages name the model and the upstream status, never the prompt or the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from promptopt.llm.errors import classify
from promptopt.llm.types import Completion, CompletionRequest, Provider

log = logging.getLogger(__name__)

OutcomeKind = Literal["ok", "permanent", "retryable", "not_run"]


@dataclass(frozen=True)
class Outcome:
    """What became of one call."""

    kind: OutcomeKind
    completion: Completion | None = None
    code: str = ""
    message: str = ""
    latency_s: float = 0.0


NOT_RUN = Outcome("not_run")


def call(provider: Provider, request: CompletionRequest) -> Outcome:
    """Call the model once (the provider's own bounded retries included) and classify the result."""
    model = provider.model
    try:
        completion = provider.complete(request)
    except Exception as exc:
        failure = classify(exc, model=model)
        if failure is None:  # unexpected: retrying is the safe choice (the last attempt records it)
            log.warning("model call %s raised %s", model, type(exc).__name__, exc_info=True)
            return Outcome(
                "retryable", code="internal", message=f"{model} call failed ({type(exc).__name__})"
            )
        return Outcome(
            "retryable" if failure.retryable else "permanent", code=failure.code, message=failure.message
        )
    return Outcome("ok", completion=completion, latency_s=completion.latency_s)
