"""Errors of model calls made for a request, each with its HTTP status and stable code.

Details name the model, the upstream status and the reason, never prompt or answer text.
"""

from __future__ import annotations

from promptopt.errors import ApiError, InvalidRequest, Unprocessable
from promptopt.llm.errors import Failure

RETRY_AFTER_S = 5


class UnknownModel(InvalidRequest):
    """The model id is malformed, names no known provider, or the provider has no such model."""

    code = "unknown_model"


class MissingVariables(InvalidRequest):
    """The template has placeholders the request does not fill (`extra.missing` names them)."""

    code = "missing_variables"


class ModelBusy(ApiError):
    """The model stayed rate-limited, failing or slow through our retries, or missed the deadline."""

    status, code, title = 503, "model_busy", "Model busy"


class ModelNotConfigured(ApiError):
    """The deployment lacks a setting the model needs (an API key, credentials, an allowed endpoint)."""

    status, code, title = 503, "model_not_configured", "Model not configured"


class ModelBlocked(Unprocessable):
    """The model refused the prompt or withheld its answer (`extra.reason` says why)."""

    code, title = "model_blocked", "Blocked by the model"


class ModelRejectedRequest(Unprocessable):
    """The provider refused this request permanently (a 4xx other than 408/429)."""

    code, title = "model_rejected_request", "Rejected by the model"


class ModelBadResponse(ApiError):
    """The model answered nothing usable (no text, or a response that could not be parsed)."""

    status, code, title = 502, "model_bad_response", "Bad response from the model"


def api_error(failure: Failure, *, context: str = "") -> ApiError:
    """The API error for a classified model failure; `context` (e.g. "metric judge: ") leads the detail."""
    detail = context + failure.message
    if failure.kind == "busy":
        return ModelBusy(f"{detail}; retry later", retry_after_s=RETRY_AFTER_S)
    if failure.kind == "blocked":
        return ModelBlocked(detail, reason=failure.reason)
    if failure.kind == "rejected":
        return ModelRejectedRequest(detail, upstream_status=failure.upstream_status)
    if failure.kind == "unknown_model":
        return UnknownModel(detail)
    if failure.kind == "not_configured":
        return ModelNotConfigured(detail)
    return ModelBadResponse(detail)
