"""The evaluation library's caller-error types (bad metric name, params or row counts)."""

from __future__ import annotations


class MetricError(ValueError):
    """Unknown metric, bad params, or predictions and references of different lengths."""


class RowMetricError(MetricError):
    """One row cannot be scored (e.g. its text is beyond a limit); the row scores 0 with this reason."""
