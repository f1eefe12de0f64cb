"""POST /api/v1/evaluate as a library call: check the request's shape, run each metric, summarise."""

from __future__ import annotations

from promptopt.errors import InvalidRequest
from promptopt.evaluation.metrics import MetricError, evaluate
from promptopt.models.evaluation import (
    EvaluateRequest,
    EvaluateResult,
    MetricRequest,
    MetricSummary,
    RowScores,
)

# Metrics that never read the reference; any other metric needs one on every row.
_REFERENCE_FREE = {"json_valid", "json_schema"}


def _reads_reference(metric: MetricRequest) -> bool:
    if metric.name == "regex":
        pattern = metric.params.get("pattern")
        return isinstance(pattern, str) and "{reference}" in pattern
    return metric.name not in _REFERENCE_FREE


def _check_shape(body: EvaluateRequest) -> None:
    n = len(body.predictions)
    for field, values in (("references", body.references), ("inputs", body.inputs)):
        if values is not None and len(values) != n:
            raise InvalidRequest(
                f"{n} predictions but {len(values)} {field}; give one per row",
                code="length_mismatch",
                field=field,
            )
    missing = next((i for i, ref in enumerate(body.references) if ref is None), None)
    if missing is None:
        return
    for metric in body.metrics:
        if _reads_reference(metric):
            raise InvalidRequest(
                f"metric {metric.name} needs a reference on every row; row {missing} has none",
                code="reference_required",
                metric=metric.name,
                index=missing,
            )


def score(*, body: EvaluateRequest) -> EvaluateResult:
    """Score every metric over the rows; caller mistakes become 400s naming the metric or row."""
    _check_shape(body)
    references = [ref or "" for ref in body.references]  # null only reaches metrics that ignore it
    summaries: list[MetricSummary] = []
    per_metric: dict[str, list[float]] = {}
    for metric in body.metrics:
        try:
            scores, result = evaluate(metric.name, body.predictions, references, metric.params)
        except (MetricError, ValueError, TypeError, RecursionError) as exc:
            # Params come from the caller (a bad regex, a malformed schema, a non-numeric tolerance):
            # a 400 naming the metric, never a 500. Texts are not echoed beyond the library's message.
            detail = str(exc) if isinstance(exc, MetricError) else f"{type(exc).__name__} in its params"
            raise InvalidRequest(
                f"metric {metric.name}: {detail}", code="invalid_metric_params", metric=metric.name
            ) from None
        per_metric[metric.name] = scores
        summaries.append(
            MetricSummary(
                name=result.name, mean=result.mean, ci_low=result.ci_low, ci_high=result.ci_high, n=result.n
            )
        )
    rows = None
    if body.include_rows:
        rows = [
            RowScores(index=i, scores={name: scores[i] for name, scores in per_metric.items()})
            for i in range(len(body.predictions))
        ]
    return EvaluateResult(n=len(body.predictions), metrics=summaries, rows=rows)
