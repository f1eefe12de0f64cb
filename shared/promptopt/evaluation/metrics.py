"""Per-row scoring metrics (each score in [0, 1]) and their aggregate with a 95% CI.

`evaluate("numeric", predictions, references, params)` returns the per-row scores and a
MetricResult. Metrics and their params:

- exact_match: normalised equality (casefold, collapse whitespace, strip, strip punctuation at ends).
- contains: the normalised reference occurs in the normalised prediction.
- regex: `params["pattern"]` (RE2 syntax, run in linear time by promptopt.safe_regex) is searched in
  the prediction; `{reference}` in the pattern is replaced by the escaped reference;
  `params["ignore_case"]` (default False).
- token_f1: SQuAD-style token F1 over normalised tokens (continuous).
- json_valid: the prediction (``` fences stripped) parses as JSON.
- json_schema: it parses and validates against `params["schema"]` (promptopt.user_schemas: local
  references only, nothing is ever fetched, regex keywords on RE2).
- numeric: GSM8K style: the reference's number after `####` (else its last number) against the
  prediction's number after its last `####` (else its last number); `params["tolerance"]` absolute
  (default 1e-6). Commas and `$` are ignored.
- multiple_choice: BBH style: a reference like `(A)` against the letter the prediction chose
  ("(B)", "B", "answer is (B)", else the last "(X)" in the text); references that are not a
  letter option fall back to exact_match.

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

import functools
import json
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptopt import safe_regex
from promptopt.evaluation.embedding import PARAMS as EMBEDDING_PARAMS
from promptopt.evaluation.embedding import embedding_similarity
from promptopt.evaluation.embedding import upper_usd as embedding_upper_usd
from promptopt.evaluation.errors import MetricError, RowMetricError
from promptopt.evaluation.judge import PARAMS as JUDGE_PARAMS
from promptopt.evaluation.judge import llm_judge
from promptopt.evaluation.judge import upper_usd as judge_upper_usd
from promptopt.evaluation.model_calls import Deadline, ModelMetric, ModelUsage
from promptopt.evaluation.names import DETERMINISTIC_METRICS, METRIC_NAMES, MODEL_METRIC_NAMES
from promptopt.evaluation.params import REFERENCE_PLACEHOLDER, check_metric_params
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
_PUNCT = (
    string.punctuation + "\u201c\u201d\u2018\u2019\u00ab\u00bb\u2026"
)  # curly quotes, guillemets, ellipsis
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FENCE = re.compile(r"^\s*```[A-Za-z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_LETTER_REF = re.compile(r"^\(?([A-Z])\)?$")


def normalize(text: str) -> str:
    """Casefold, collapse whitespace, strip, and strip punctuation at both ends."""
    return " ".join(text.casefold().split()).strip(_PUNCT + " ")


def exact_match(prediction: str, reference: str, params: Params) -> float:
    """1.0 when the normalised texts are equal."""
    return float(normalize(prediction) == normalize(reference))


def contains(prediction: str, reference: str, params: Params) -> float:
    """1.0 when the normalised reference occurs in the normalised prediction (empty ref: exact)."""
    ref = normalize(reference)
    return float(ref in normalize(prediction)) if ref else exact_match(prediction, reference, params)


def regex(prediction: str, reference: str, params: Params) -> float:
    """1.0 when params["pattern"] (with `{reference}` substituted, escaped) matches the prediction."""
    pattern = params.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise MetricError("regex metric needs params.pattern (a non-empty string)")
    limit = safe_regex.MAX_PATTERN_CHARS
    if REFERENCE_PLACEHOLDER in pattern:
        pattern = pattern.replace(REFERENCE_PLACEHOLDER, safe_regex.escape(reference))
        limit = safe_regex.MAX_EXPANDED_PATTERN_CHARS
    try:
        program = safe_regex.compile_pattern(
            pattern, ignore_case=bool(params.get("ignore_case")), max_chars=limit, what="params.pattern"
        )
    except safe_regex.UnsafePatternError as exc:
        if limit == safe_regex.MAX_PATTERN_CHARS:
            raise MetricError(str(exc)) from None
        raise RowMetricError(f"with this row's reference, {exc}") from None
    try:
        return float(safe_regex.search(program, prediction))
    except safe_regex.UnsafePatternError as exc:
        raise RowMetricError(str(exc)) from None


def _tokens(text: str) -> list[str]:
    return [tok for tok in (t.strip(_PUNCT) for t in text.casefold().split()) if tok]


def token_f1(prediction: str, reference: str, params: Params) -> float:
    """Harmonic mean of token precision and recall (both empty: 1.0; one empty: 0.0)."""
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _parse_json(text: str) -> tuple[bool, Any]:
    fenced = _FENCE.match(text)
    try:
        return True, json.loads(fenced.group(1) if fenced else text)
    except (ValueError, RecursionError):  # nesting beyond the parser's depth is not usable JSON
        return False, None


def json_valid(prediction: str, reference: str, params: Params) -> float:
    """1.0 when the prediction (``` fences allowed) is JSON."""
    return float(_parse_json(prediction)[0])


def json_schema(prediction: str, reference: str, params: Params) -> float:
    """1.0 when the prediction is JSON valid against params["schema"]."""
    schema = params.get("schema")
    if not isinstance(schema, dict):
        raise MetricError("json_schema metric needs params.schema (a JSON Schema object)")
    check = _schema_validator(json.dumps(schema, sort_keys=True))
    ok, value = _parse_json(prediction)
    if not ok:
        return 0.0
    from referencing.exceptions import Unresolvable

    try:
        return float(check.is_valid(value))
    except Unresolvable:
        raise MetricError("params.schema has a reference that does not resolve") from None
    except (RecursionError, safe_regex.UnsafePatternError):
        raise RowMetricError(
            "the prediction is too deep or too long to validate against params.schema"
        ) from None


@functools.lru_cache(maxsize=32)
def _schema_validator(canonical: str) -> Any:
    """The checked, fetch-free validator of a schema (cached: it is used once per row)."""
    from promptopt.user_schemas import UserSchemaError, validator

    try:
        return validator(json.loads(canonical))
    except UserSchemaError as exc:
        raise MetricError(f"params.schema: {exc}") from None


def _final_number(text: str) -> float | None:
    cleaned = text.replace(",", "").replace("$", "")
    if "####" in cleaned:
        tail = _NUMBER.search(cleaned.rsplit("####", 1)[1])
        if tail:
            return float(tail.group(0))
    found = _NUMBER.findall(cleaned)
    return float(found[-1]) if found else None


def numeric(prediction: str, reference: str, params: Params) -> float:
    """GSM8K-style final-number comparison within params["tolerance"] (absolute, default 1e-6)."""
    expected = _final_number(reference)
    if expected is None:
        raise MetricError("numeric metric: a reference has no number")
    got = _final_number(prediction)
    tolerance = params.get("tolerance", 1e-6)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise MetricError("params.tolerance must be a number")
    return float(got is not None and abs(got - expected) <= tolerance)


def choice_letter(prediction: str) -> str | None:
    """The option letter a prediction chose, or None."""
    text = prediction.strip()
    alone = _LETTER_REF.match(text.rstrip("."))
    if alone:
        return alone.group(1)
    stated = re.findall(r"answer(?: is|:)\s*\(?([A-Z])\)?(?![A-Za-z])", text, re.IGNORECASE)
    if stated:
        return stated[-1].upper()
    bracketed = re.findall(r"\(([A-Z])\)", text)
    return bracketed[-1] if bracketed else None


def multiple_choice(prediction: str, reference: str, params: Params) -> float:
    """BBH-style: the chosen option letter equals the reference letter."""
    ref = _LETTER_REF.match(reference.strip())
    if not ref:
        return exact_match(prediction, reference, params)
    return float(choice_letter(prediction) == ref.group(1))


ScoreFn = Callable[[str, str, Params], float]


@dataclass(frozen=True)
class Metric:
    """A named per-row scoring function."""

    name: str
    score: ScoreFn
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("exact_match", exact_match, "normalised exact match"),
        Metric("contains", contains, "reference contained in prediction"),
        Metric("regex", regex, "regex search (params.pattern)"),
        Metric("token_f1", token_f1, "token-level F1"),
        Metric("json_valid", json_valid, "prediction is JSON"),
        Metric("json_schema", json_schema, "prediction is JSON valid against params.schema"),
        Metric("numeric", numeric, "GSM8K final number within params.tolerance"),
        Metric("multiple_choice", multiple_choice, "BBH option letter"),
    )
}


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
if tuple(METRICS) != DETERMINISTIC_METRICS or tuple(MODEL_METRICS) != MODEL_METRIC_NAMES:
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
