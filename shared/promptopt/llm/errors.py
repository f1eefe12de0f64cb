"""One classification of model-call failures, shared by every caller.

Inference answers the caller with an API error, a batch row records a row error or retries its
task, a model-backed metric fails its evaluation, and the optimizer counts a failed proposal: each
adapts the same `Failure` (what kind, whether retrying can help, a stable code and a message that
names the model and the upstream status, never prompt or answer text).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

from promptopt.llm.types import (
    FORBID_ENV,
    EmptyResponseError,
    MalformedResponseError,
    ModelBlockedError,
    ModelConfigError,
    ModelError,
    ModelRequestError,
    RetryableModelError,
)

FailureKind = Literal["busy", "blocked", "rejected", "unknown_model", "bad_response", "not_configured"]
CODES: dict[FailureKind, str] = {
    "busy": "model_busy",
    "blocked": "model_blocked",
    "rejected": "model_rejected_request",
    "unknown_model": "unknown_model",
    "bad_response": "model_bad_response",
    "not_configured": "model_not_configured",
}


@dataclass(frozen=True)
class Failure:
    """A model-call failure, classified."""

    kind: FailureKind
    message: str
    upstream_status: int | None = None
    reason: str | None = None  # why the model blocked the request

    @property
    def code(self) -> str:
        """The stable machine code (the same in API problems and row errors)."""
        return CODES[self.kind]

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later (rate limits, outages, deadlines)."""
        return self.kind == "busy"


def _status(exc: ModelError) -> str:
    return f" (HTTP {exc.status})" if exc.status else ""


def is_credentials_error(exc: BaseException) -> bool:
    """A Google auth failure (no Application Default Credentials): the deployment's, not the caller's."""
    # google.auth is loaded only once a Gemini client exists; without it this cannot be one.
    gauth = sys.modules.get("google.auth.exceptions")
    return gauth is not None and isinstance(exc, gauth.GoogleAuthError)


def config_hint(model: str, exc: BaseException) -> str:
    """What to set so that `model` works here."""
    provider = model.split(":", 1)[0]
    if FORBID_ENV in str(exc):
        return (
            f"{model}: only local model endpoints are allowed here ({FORBID_ENV} is set); "
            "point the provider's base URL setting at a local server"
        )
    if provider == "openai":
        return (
            f"{model}: no API key; set PROMPTOPT_SECRET_OPENAI_API_KEY "
            "(in the cloud, from the Secret Manager secret openai-api-key)"
        )
    if provider == "gemini":
        return (
            f"{model}: no credentials for Vertex AI; the function's service account needs "
            "roles/aiplatform.user (Application Default Credentials), or set PROMPTOPT_GEMINI_ACCESS_TOKEN "
            "for a local fake"
        )
    return f"{model}: not configured ({type(exc).__name__})"


def classify(exc: BaseException, *, model: str) -> Failure | None:
    """The failure `exc` is for a call to `model`, or None when it is not a model failure (a bug)."""
    if isinstance(exc, RetryableModelError):
        return Failure("busy", f"{model} is rate-limited or unavailable{_status(exc)}", exc.status)
    if isinstance(exc, ModelBlockedError):
        reason = exc.reason
        return Failure("blocked", f"{model} blocked the prompt or its answer ({reason})", reason=reason)
    if isinstance(exc, ModelRequestError):
        if exc.status == 404:
            return Failure("unknown_model", f"the provider reports no model {model} (HTTP 404)", 404)
        return Failure("rejected", f"{model} rejected the request{_status(exc)}", exc.status)
    if isinstance(exc, EmptyResponseError | MalformedResponseError):
        what = "no text" if isinstance(exc, EmptyResponseError) else "a response that could not be parsed"
        return Failure("bad_response", f"{model} answered {what}")
    if isinstance(exc, ModelConfigError):
        if FORBID_ENV in str(exc) or "API key" in str(exc):
            return Failure("not_configured", config_hint(model, exc))
        # A malformed or unknown model id, or an embedding model of another provider: the caller's.
        return Failure("unknown_model", str(exc))
    if isinstance(exc, ModelError):  # a subclass added later: not the caller's fault, not ours to hide
        return Failure("bad_response", f"{model} failed ({type(exc).__name__})")
    if is_credentials_error(exc):
        return Failure("not_configured", config_hint(model, exc))
    return None
