"""A model-backed metric's provider failure as the API error inference uses for the same failure.

Same statuses and codes as POST /api/v1/inference/complete (see `llm.errors.classify`), plus the
metric's own deadline as 503 model_busy. Details name the metric, the model and the upstream
status, never row text.
"""

from __future__ import annotations

import logging

from promptopt.errors import ApiError
from promptopt.evaluation.model_calls import MetricDeadlineError
from promptopt.inference.errors import RETRY_AFTER_S, ModelBusy
from promptopt.inference.errors import api_error as inference_api_error
from promptopt.llm.errors import classify

log = logging.getLogger(__name__)


def api_error(exc: Exception, *, metric: str) -> ApiError | None:
    """The API error for a provider failure during `metric`, or None when `exc` is not one."""
    if isinstance(exc, MetricDeadlineError):
        return ModelBusy(f"metric {metric}: {exc}; retry with fewer rows", retry_after_s=RETRY_AFTER_S)
    model = getattr(exc, "model", "") or "the model"
    failure = classify(exc, model=model)
    if failure is None:
        return None
    log.warning(
        "metric %s: model call failed: %s",
        metric,
        type(exc).__name__,
        extra={"fields": {"metric": metric, "model": model, "error": type(exc).__name__}},
    )
    return inference_api_error(failure, context=f"metric {metric}: ")
