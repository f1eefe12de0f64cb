"""A model-backed metric's provider failure as the API error inference uses for the same failure.

Same statuses and codes as POST /api/v1/inference/complete: 503 model_busy (with Retry-After)
for rate limits, outages and the deadline; 503 model_not_configured; 422 model_blocked /
model_rejected_request; 400 unknown_model; 502 model_bad_response. Details name the metric, the
model and the upstream status, never row text.
"""

from __future__ import annotations

import logging
import sys

from promptopt.errors import ApiError
from promptopt.evaluation.model_calls import MetricDeadlineError
from promptopt.inference.errors import (
    RETRY_AFTER_S,
    ModelBadResponse,
    ModelBlocked,
    ModelBusy,
    ModelNotConfigured,
    ModelRejectedRequest,
    UnknownModel,
)
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

log = logging.getLogger(__name__)


def api_error(exc: Exception, *, metric: str) -> ApiError | None:
    """The API error for a provider failure during `metric`, or None when `exc` is not one."""
    model = getattr(exc, "model", "") or "the model"
    status = f" (HTTP {exc.status})" if isinstance(exc, ModelError) and exc.status else ""
    error: ApiError
    if isinstance(exc, MetricDeadlineError):
        error = ModelBusy(f"metric {metric}: {exc}; retry with fewer rows", retry_after_s=RETRY_AFTER_S)
    elif isinstance(exc, RetryableModelError):
        error = ModelBusy(
            f"metric {metric}: {model} is rate-limited or unavailable{status}; retry later",
            retry_after_s=RETRY_AFTER_S,
        )
    elif isinstance(exc, ModelBlockedError):
        error = ModelBlocked(
            f"metric {metric}: {model} blocked the request ({exc.reason})", reason=exc.reason
        )
    elif isinstance(exc, ModelRequestError) and exc.status == 404:
        error = UnknownModel(f"metric {metric}: the provider reports no model {model} (HTTP 404)")
    elif isinstance(exc, ModelRequestError):
        error = ModelRejectedRequest(
            f"metric {metric}: {model} rejected the request{status}", upstream_status=exc.status
        )
    elif isinstance(exc, EmptyResponseError | MalformedResponseError):
        error = ModelBadResponse(f"metric {metric}: {model} answered nothing usable")
    elif isinstance(exc, ModelConfigError):
        error = _config_error(exc, metric)
    elif isinstance(exc, ModelError):  # a subclass added later: not the caller's fault
        error = ModelBadResponse(f"metric {metric}: {model} failed ({type(exc).__name__})")
    elif _is_credentials_error(exc):
        error = ModelNotConfigured(f"metric {metric}: no credentials for Vertex AI (roles/aiplatform.user)")
    else:
        return None
    log.warning(
        "metric %s: model call failed: %s",
        metric,
        type(exc).__name__,
        extra={"fields": {"metric": metric, "model": model, "error": type(exc).__name__}},
    )
    return error


def _config_error(exc: ModelConfigError, metric: str) -> ApiError:
    if FORBID_ENV in str(exc):
        return ModelNotConfigured(
            f"metric {metric}: only local model endpoints are allowed here ({FORBID_ENV} is set)"
        )
    if "API key" in str(exc):
        return ModelNotConfigured(f"metric {metric}: {exc.model} has no API key configured")
    # A malformed or unknown model id, or an embedding model of another provider: the caller's.
    return UnknownModel(f"metric {metric}: {exc}")


def _is_credentials_error(exc: Exception) -> bool:
    # google.auth is loaded only once a Gemini client exists; without it this cannot be one.
    gauth = sys.modules.get("google.auth.exceptions")
    return gauth is not None and isinstance(exc, gauth.GoogleAuthError)
