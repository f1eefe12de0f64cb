"""POST /api/v1/evaluate as a library call: check the request's shape, run each metric, summarise.

Model-backed metrics (embedding_similarity, llm_judge) run synchronously within the request:
llm_judge takes at most MAX_JUDGE_ROWS rows, every model call shares one deadline, a metric
that calls a real (non-simulated) model needs the editor role since it spends model budget,
and provider failures become the same typed API errors as inference (never a 500).

Their calls count as synchronous usage, like a completion's: admitted against the tenant's
monthly spending cap on their upper-bound cost (402 `spending_cap_exceeded`), then recorded per
model (calls, tokens, cost) in `GET /api/v1/usage` and the month's spend, even when a metric
fails part-way. Identical rows are called once; there is no response cache, so no cache hits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from promptopt.errors import InvalidRequest
from promptopt.evaluation.errors import MetricError
from promptopt.evaluation.metrics import MODEL_METRICS, MetricScores, score_rows
from promptopt.evaluation.model_calls import Deadline, Meter, metering, metric_model
from promptopt.evaluation.model_errors import api_error
from promptopt.evaluation.models import (
    MAX_JUDGE_ROWS,
    EvaluateRequest,
    EvaluateResult,
    MetricRequest,
    MetricSummary,
    MetricUsage,
    RowScores,
)
from promptopt.llm.types import ModelConfigError

if TYPE_CHECKING:
    from promptopt.auth import Principal

# Metrics that never read the reference; any other metric needs one on every row.
_REFERENCE_FREE = {"json_valid", "json_schema"}
DEFAULT_DEADLINE_S = 50.0


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
    if n > MAX_JUDGE_ROWS and any(m.name == "llm_judge" for m in body.metrics):
        raise InvalidRequest(
            f"llm_judge grades at most {MAX_JUDGE_ROWS} rows per request; got {n}",
            code="too_many_rows",
            metric="llm_judge",
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


def _check_budget(body: EvaluateRequest, references: list[str], principal: Principal | None) -> None:
    """Model calls spend budget: a real model needs an editor, and the cap must leave room (402).

    As for inference: the tenant's monthly spending cap must hold the calls' upper-bound cost.
    """
    from promptopt.auth import Role

    upper = 0.0
    for metric in body.metrics:
        if metric.name not in MODEL_METRICS:
            continue
        try:
            model, _ = metric_model(metric.params)
            if principal is None:  # a library caller: no tenant, no cap
                continue
            if model.provider != "sim":
                principal.require(Role.editor)
            upper += MODEL_METRICS[metric.name].upper_usd(
                body.predictions, references, metric.params, inputs=body.inputs
            )
        except (MetricError, ModelConfigError) as exc:
            raise _as_api_error(exc, metric.name) from None
    if upper > 0 and principal is not None:
        from promptopt.spend import caps

        caps.admit(principal.tenant, upper, "this evaluation's model calls")


def _record_spend(principal: Principal | None, meter: Meter) -> None:
    """Add the calls made (those of a metric that failed part-way included) to usage and spend."""
    if principal is None:
        return
    from promptopt.spend import ledger

    for usage in meter.by_model.values():
        if usage.calls or usage.cost_usd:
            ledger.record_sync(
                principal.tenant,
                model=usage.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=usage.cost_usd,
                calls=usage.calls,
            )


def _as_api_error(exc: Exception, metric: str) -> Exception:
    if isinstance(exc, MetricError):
        return InvalidRequest(f"metric {metric}: {exc}", code="invalid_metric_params", metric=metric)
    return api_error(exc, metric=metric) or exc


def _score(
    body: EvaluateRequest, metric: MetricRequest, references: list[str], deadline: Deadline
) -> MetricScores:
    try:
        return score_rows(
            metric.name,
            body.predictions,
            references,
            metric.params,
            inputs=body.inputs,
            deadline_s=deadline.remaining(),
        )
    except MetricError as exc:
        raise _as_api_error(exc, metric.name) from None
    except (ValueError, TypeError, RecursionError) as exc:
        if metric.name in MODEL_METRICS:
            raise
        # Params come from the caller (a bad regex, a malformed schema, a non-numeric tolerance):
        # a 400 naming the metric, never a 500. Texts are not echoed beyond the library's message.
        raise InvalidRequest(
            f"metric {metric.name}: {type(exc).__name__} in its params",
            code="invalid_metric_params",
            metric=metric.name,
        ) from None
    except Exception as exc:
        mapped = api_error(exc, metric=metric.name)
        if mapped is None:
            raise
        raise mapped from exc


def score(
    *, body: EvaluateRequest, principal: Principal | None = None, deadline_s: float = DEFAULT_DEADLINE_S
) -> EvaluateResult:
    """Score every metric over the rows; caller mistakes become 400s naming the metric or row.

    `deadline_s` bounds all model calls together (the endpoint passes its own timeout less a margin).
    """
    deadline = Deadline(deadline_s)
    _check_shape(body)
    references = [ref or "" for ref in body.references]  # null only reaches metrics that ignore it
    _check_budget(body, references, principal)
    summaries: list[MetricSummary] = []
    found: dict[str, MetricScores] = {}
    with metering() as meter:
        try:
            for metric in body.metrics:
                found[metric.name] = _score(body, metric, references, deadline)
        finally:
            _record_spend(principal, meter)
    for metric in body.metrics:
        scored = found[metric.name]
        result, usage = scored.result, scored.usage
        summaries.append(
            MetricSummary(
                name=result.name,
                mean=result.mean,
                ci_low=result.ci_low,
                ci_high=result.ci_high,
                n=result.n,
                errors=len(scored.errors),
                usage=None
                if usage is None
                else MetricUsage(
                    model=usage.model,
                    calls=usage.calls,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=round(usage.cost_usd, 8),
                    simulated=usage.model.startswith("sim:"),
                ),
            )
        )
    rows = None
    if body.include_rows:
        rows = [_row(i, found) for i in range(len(body.predictions))]
    cost = math.fsum(s.usage.cost_usd for s in found.values() if s.usage is not None)
    return EvaluateResult(n=len(body.predictions), metrics=summaries, rows=rows, cost_usd=round(cost, 8))


def _row(index: int, found: dict[str, MetricScores]) -> RowScores:
    errors = {name: s.errors[index] for name, s in found.items() if index in s.errors}
    reasons = {name: s.reasons[index] for name, s in found.items() if index in s.reasons}
    return RowScores(
        index=index,
        scores={name: s.scores[index] for name, s in found.items()},
        errors=errors or None,
        reasons=reasons or None,
    )
