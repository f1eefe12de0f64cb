"""The deterministic per-row metrics: each scores one (prediction, reference) pair in [0, 1].

Metrics and their params:

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

Kept apart from promptopt.evaluation.metrics, which adds the model-backed metrics, so that checking
a deterministic metric's params when a job or an experiment is created does not load the grading
and embedding code (cold start).
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from promptopt import safe_regex
from promptopt.evaluation.errors import MetricError, RowMetricError
from promptopt.evaluation.names import DETERMINISTIC_METRICS
from promptopt.evaluation.params import REFERENCE_PLACEHOLDER

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


class Metric(NamedTuple):
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
if tuple(METRICS) != DETERMINISTIC_METRICS:
    raise RuntimeError("promptopt.evaluation.names does not list the metrics defined here")
