"""Scoring model outputs against references, with confidence intervals."""

from promptopt.evaluation.metrics import METRICS, Metric, MetricError, evaluate
from promptopt.evaluation.stats import MetricResult, bootstrap_interval, wilson_interval

__all__ = [
    "METRICS",
    "Metric",
    "MetricError",
    "MetricResult",
    "bootstrap_interval",
    "evaluate",
    "wilson_interval",
]
