"""One model call of a batch row, its failure classified by what the chunk should do about it.

- retryable (429, 5xx, timeouts, anything unexpected): the row stays pending and the task fails,
  so Cloud Tasks retries it later with backoff (on the last attempt it becomes a terminal failure);
- permanent (the provider refused this request, blocked it, answered nothing usable, or the model
  is not configured): the row is recorded as failed and the chunk goes on without it.

Messages name the model and the upstream status, never the prompt or the answer.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Literal

from promptopt.llm.types import (
    Completion,
    CompletionRequest,
    EmptyResponseError,
    MalformedResponseError,
    ModelBlockedError,
    ModelConfigError,
    ModelError,
    ModelRequestError,
    Provider,
    RetryableModelError,
)

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


def _status(exc: ModelError) -> str:
    return f" (HTTP {exc.status})" if exc.status else ""


def _is_credentials_error(exc: Exception) -> bool:
    gauth = sys.modules.get("google.auth.exceptions")
    return gauth is not None and isinstance(exc, gauth.GoogleAuthError)


def call(provider: Provider, request: CompletionRequest) -> Outcome:
    """Call the model once (the provider's own bounded retries included) and classify the result."""
    model = provider.model
    try:
        completion = provider.complete(request)
    except RetryableModelError as exc:
        return Outcome(
            "retryable", code="model_busy", message=f"{model} is rate-limited or unavailable{_status(exc)}"
        )
    except ModelBlockedError as exc:
        return Outcome(
            "permanent", code="model_blocked", message=f"{model} blocked the prompt or answer ({exc.reason})"
        )
    except ModelRequestError as exc:
        return Outcome(
            "permanent", code="model_rejected_request", message=f"{model} rejected the request{_status(exc)}"
        )
    except (EmptyResponseError, MalformedResponseError) as exc:
        what = "no text" if isinstance(exc, EmptyResponseError) else "a response that could not be parsed"
        return Outcome("permanent", code="model_bad_response", message=f"{model} answered {what}")
    except ModelConfigError:
        return Outcome("permanent", code="model_not_configured", message=f"{model} is not configured here")
    except ModelError as exc:
        return Outcome("permanent", code="model_error", message=f"{model} failed ({type(exc).__name__})")
    except Exception as exc:
        if _is_credentials_error(exc):
            return Outcome("permanent", code="model_not_configured", message=f"{model} has no credentials")
        log.warning("model call %s raised %s", model, type(exc).__name__, exc_info=True)
        return Outcome("retryable", code="internal", message=f"{model} call failed ({type(exc).__name__})")
    return Outcome("ok", completion=completion, latency_s=completion.latency_s)
