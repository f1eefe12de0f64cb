"""Scoring model outputs against references, with confidence intervals.

Deterministic metrics (METRICS) score one row at a time; model-backed metrics (MODEL_METRICS:
embedding_similarity, llm_judge) call a model, importing its SDK only then.
"""

from promptopt.evaluation.errors import MetricError, RowMetricError
from promptopt.evaluation.metrics import (
    METRIC_NAMES,
    METRICS,
    MODEL_METRICS,
    Metric,
    MetricScores,
    evaluate,
    score_rows,
)
from promptopt.evaluation.model_calls import MetricDeadlineError, ModelMetric, ModelUsage
from promptopt.evaluation.stats import MetricResult, bootstrap_interval, wilson_interval

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
