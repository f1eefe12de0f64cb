"""Scoring model outputs against references, with confidence intervals.

Deterministic metrics (METRICS) score one row at a time; model-backed metrics (MODEL_METRICS:
embedding_similarity, llm_judge) call a model, importing its SDK only then.

The names below are loaded on first use: request models import promptopt.evaluation.names and
.params (metric names and params) without the scoring code, the model-backed metrics or the LLM
registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from promptopt.evaluation.names import METRIC_NAMES

if TYPE_CHECKING:
    from promptopt.evaluation.errors import MetricError, RowMetricError
    from promptopt.evaluation.metrics import MODEL_METRICS, MetricScores, evaluate, score_rows
    from promptopt.evaluation.model_calls import MetricDeadlineError, ModelMetric, ModelUsage
    from promptopt.evaluation.row_metrics import METRICS, Metric
    from promptopt.evaluation.stats import MetricResult, bootstrap_interval, wilson_interval

_HOMES = {
    "METRICS": "row_metrics",
    "MODEL_METRICS": "metrics",
    "Metric": "row_metrics",
    "MetricScores": "metrics",
    "evaluate": "metrics",
    "score_rows": "metrics",
    "MetricError": "errors",
    "RowMetricError": "errors",
    "MetricDeadlineError": "model_calls",
    "ModelMetric": "model_calls",
    "ModelUsage": "model_calls",
    "MetricResult": "stats",
    "bootstrap_interval": "stats",
    "wilson_interval": "stats",
}

__all__ = [
    "METRICS",
    "METRIC_NAMES",
    "MODEL_METRICS",
    "Metric",
    "MetricDeadlineError",
    "MetricError",
    "MetricResult",
    "MetricScores",
    "ModelMetric",
    "ModelUsage",
    "RowMetricError",
    "bootstrap_interval",
    "evaluate",
    "score_rows",
    "wilson_interval",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
