"""Each metric's params: which names it takes and what their values must be.

`check_metric_params` runs at the door (the request models) and again before scoring (library
callers, stored jobs). An unknown param is an error naming it, never silently ignored; a regex
must be RE2 and a schema must pass promptopt.user_schemas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from promptopt import safe_regex
from promptopt.evaluation.errors import MetricError
from promptopt.evaluation.names import PARAMS
from promptopt.json_values import check_json_value
from promptopt.user_schemas import UserSchemaError, check_user_schema, schema_bytes

MAX_SCHEMA_BYTES = 32_768
MAX_TOLERANCE = 1e15
REFERENCE_PLACEHOLDER = "{reference}"

__all__ = ["MAX_SCHEMA_BYTES", "MAX_TOLERANCE", "PARAMS", "REFERENCE_PLACEHOLDER", "check_metric_params"]


def _name(key: object) -> str:
    text = str(key)
    return text if len(text) <= 40 else text[:40] + "…"


def check_metric_params(metric: str, params: Mapping[str, Any]) -> None:
    """Raise MetricError unless `params` suit `metric` (names, then values of deterministic ones)."""
    allowed = PARAMS.get(metric)
    if allowed is None:
        raise MetricError(f"unknown metric {_name(metric)!r}")
    unknown = sorted(_name(k) for k in set(params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no params"
        raise MetricError(f"{metric} does not take params {', '.join(unknown)}; it takes {takes}")
    try:
        check_json_value(dict(params), what="params")
    except ValueError as exc:
        raise MetricError(str(exc)) from None
    if metric == "regex":
        _check_regex(params)
    elif metric == "json_schema":
        _check_schema(params.get("schema"))
    elif metric == "numeric" and "tolerance" in params:
        tolerance = params["tolerance"]
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
            raise MetricError("params.tolerance must be a number")
        if not (math.isfinite(tolerance) and 0 <= tolerance <= MAX_TOLERANCE):
            raise MetricError(f"params.tolerance must be within [0, {MAX_TOLERANCE:g}]")


def _check_regex(params: Mapping[str, Any]) -> None:
    pattern = params.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise MetricError("regex metric needs params.pattern (a non-empty string)")
    if "ignore_case" in params and not isinstance(params["ignore_case"], bool):
        raise MetricError("params.ignore_case must be true or false")
    if len(pattern) > safe_regex.MAX_PATTERN_CHARS:
        raise MetricError(f"params.pattern is longer than {safe_regex.MAX_PATTERN_CHARS} characters")
    try:
        # `{reference}` becomes an escaped literal per row; an empty group stands in for it here.
        safe_regex.check(pattern.replace(REFERENCE_PLACEHOLDER, "(?:)"), what="params.pattern")
    except safe_regex.UnsafePatternError as exc:
        raise MetricError(str(exc)) from None


def _check_schema(schema: Any) -> None:
    if not isinstance(schema, dict):
        raise MetricError("json_schema metric needs params.schema (a JSON Schema object)")
    if schema_bytes(schema) > MAX_SCHEMA_BYTES:
        raise MetricError(f"params.schema is larger than {MAX_SCHEMA_BYTES} bytes as JSON")
    try:
        check_user_schema(schema, runs_here=True)
    except UserSchemaError as exc:
        raise MetricError(f"params.schema: {exc}") from None
