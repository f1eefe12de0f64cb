"""The evaluation library's caller-error type (bad metric name, params or row counts)."""

from __future__ import annotations


class MetricError(ValueError):
    """Unknown metric, bad params, or predictions and references of different lengths."""
