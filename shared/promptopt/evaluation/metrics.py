"""Every scoring metric (each score in [0, 1]) and their aggregate with a 95% CI.

`evaluate("numeric", predictions, references, params)` returns the per-row scores and a
MetricResult. The deterministic metrics (METRICS) and their params are described in
promptopt.evaluation.row_metrics.

Model-backed metrics (MODEL_METRICS) call a model and score all rows at once:

- embedding_similarity: cosine similarity of provider embeddings (promptopt.evaluation.embedding);
  params model, threshold.
- llm_judge: a model grades each row by a rubric (promptopt.evaluation.judge); params rubric,
  scale, model, max_tokens.

Params are checked by promptopt.evaluation.params before any row is scored; a row that cannot be
scored (a text beyond a limit) scores 0 with a per-row error (RowMetricError).

`score_rows` returns everything (scores, per-row errors and reasons, model usage); `evaluate`
returns the scores and their aggregate for any metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptopt.evaluation.embedding import PARAMS as EMBEDDING_PARAMS
from promptopt.evaluation.embedding import embedding_similarity
from promptopt.evaluation.embedding import upper_usd as embedding_upper_usd
from promptopt.evaluation.errors import MetricError, RowMetricError
from promptopt.evaluation.judge import PARAMS as JUDGE_PARAMS
from promptopt.evaluation.judge import llm_judge
from promptopt.evaluation.judge import upper_usd as judge_upper_usd
from promptopt.evaluation.model_calls import Deadline, ModelMetric, ModelUsage
from promptopt.evaluation.names import METRIC_NAMES, MODEL_METRIC_NAMES
from promptopt.evaluation.params import check_metric_params
from promptopt.evaluation.row_metrics import METRICS, Metric
from promptopt.evaluation.stats import MetricResult, summarize

__all__ = [
    "METRICS",
    "METRIC_NAMES",
    "MODEL_METRICS",
    "Metric",
    "MetricError",
    "MetricScores",
    "RowMetricError",
    "evaluate",
    "score_rows",
]

Params = Mapping[str, Any]


MODEL_METRICS: dict[str, ModelMetric] = {
    m.name: m
    for m in (
        ModelMetric(
            "embedding_similarity",
            embedding_similarity,
            "cosine similarity of embeddings (params.model, params.threshold)",
            EMBEDDING_PARAMS,
            embedding_upper_usd,
        ),
        ModelMetric(
            "llm_judge",
            llm_judge,
            "a model grades each row by params.rubric on params.scale (params.model)",
            JUDGE_PARAMS,
            judge_upper_usd,
        ),
    )
}
if tuple(MODEL_METRICS) != MODEL_METRIC_NAMES:
    raise RuntimeError("promptopt.evaluation.names does not list the metrics defined here")


@dataclass(frozen=True)
class MetricScores:
    """Everything one metric produced: per-row scores and their aggregate.

    Model-backed metrics add per-row errors (rows scored 0.0 because the model's answer was
    unusable), the judge's per-row reasons, and the model usage.
    """

    scores: list[float]
    result: MetricResult
    errors: dict[int, str] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    usage: ModelUsage | None = None


def score_rows(
    metric: str,
    predictions: Sequence[str],
    references: Sequence[str],
    params: Params | None = None,
    *,
    inputs: Sequence[str] | None = None,
    deadline_s: float | None = None,
) -> MetricScores:
    """Score each row with `metric` and aggregate.

    Raises MetricError on an unknown metric, bad params or mismatched lengths; model-backed
    metrics also raise ModelError subclasses (promptopt.llm.types) when the provider fails,
    and MetricDeadlineError when their calls outlast `deadline_s` seconds (default 300).
    """
    if metric not in METRICS and metric not in MODEL_METRICS:
        raise MetricError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    if len(predictions) != len(references):
        raise MetricError(f"{len(predictions)} predictions but {len(references)} references")
    if inputs is not None and len(inputs) != len(predictions):
        raise MetricError(f"{len(predictions)} predictions but {len(inputs)} inputs")
    options = params or {}
    if metric in MODEL_METRICS:
        found = MODEL_METRICS[metric].run(
            predictions, references, options, inputs=inputs, deadline=Deadline(deadline_s)
        )
        return MetricScores(
            scores=found.scores,
            result=summarize(metric, found.scores),
            errors=found.errors,
            reasons=found.reasons,
            usage=found.usage,
        )
    check_metric_params(metric, options)
    score = METRICS[metric].score
    scores: list[float] = []
    errors: dict[int, str] = {}
    for index, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
        try:
            scores.append(score(prediction, reference, options))
        except RowMetricError as exc:
            scores.append(0.0)
            errors[index] = str(exc)
    return MetricScores(scores=scores, result=summarize(metric, scores), errors=errors)


def evaluate(
    metric: str,
    predictions: Sequence[str],
    references: Sequence[str],
    params: Params | None = None,
    *,
    inputs: Sequence[str] | None = None,
    deadline_s: float | None = None,
) -> tuple[list[float], MetricResult]:
    """Score each row with `metric` and aggregate (see `score_rows` for errors and model metrics)."""
    found = score_rows(metric, predictions, references, params, inputs=inputs, deadline_s=deadline_s)
    return found.scores, found.result
