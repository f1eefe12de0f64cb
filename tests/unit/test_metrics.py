"""Metrics: per-row edge cases, registry errors, and confidence intervals."""

from __future__ import annotations

import pytest

from promptopt.evaluation import METRICS, MetricError, evaluate, wilson_interval
from promptopt.evaluation.row_metrics import choice_letter, normalize
from promptopt.evaluation.stats import bootstrap_interval, summarize


def score(metric: str, prediction: str, reference: str, **params: object) -> float:
    return evaluate(metric, [prediction], [reference], params)[0][0]


def test_normalize_and_exact_match() -> None:
    assert normalize("  Hello,\n  WORLD!! ") == "hello, world"
    assert score("exact_match", "Paris.", "paris") == 1.0
    assert score("exact_match", "Paris is", "paris") == 0.0
    assert score("exact_match", "", "") == 1.0


def test_contains_and_regex() -> None:
    assert score("contains", "The answer is Paris, France.", "paris") == 1.0
    assert score("contains", "London", "paris") == 0.0
    assert score("regex", "answer: 42", "42", pattern=r"answer:\s*{reference}$") == 1.0
    assert score("regex", "ANSWER: 7", "7", pattern="answer", ignore_case=True) == 1.0
    with pytest.raises(MetricError):
        score("regex", "x", "x")
    with pytest.raises(MetricError):
        score("regex", "x", "x", pattern="(")


def test_token_f1() -> None:
    assert score("token_f1", "the cat sat", "the cat sat") == 1.0
    assert score("token_f1", "cat", "the cat") == pytest.approx(2 / 3)
    assert score("token_f1", "", "") == 1.0
    assert score("token_f1", "dog", "") == 0.0


def test_json_metrics() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert score("json_valid", '```json\n{"a": 1}\n```', "") == 1.0
    assert score("json_valid", "{a: 1}", "") == 0.0
    assert score("json_schema", '{"a": 1}', "", schema=schema) == 1.0
    assert score("json_schema", '{"a": "1"}', "", schema=schema) == 0.0
    assert score("json_schema", "nope", "", schema=schema) == 0.0
    with pytest.raises(MetricError):
        score("json_schema", "{}", "")
    array = {"type": "array", "items": {"type": "number"}, "maxItems": 1}
    assert score("json_schema", "[1]", "", schema=array) == 1.0
    assert score("json_schema", "[1, 2]", "", schema=array) == 0.0
    local = {"$defs": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/$defs/n"}}
    assert score("json_schema", "[1, 2]", "", schema=local) == 1.0
    assert score("json_schema", '[1, "2"]', "", schema=local) == 0.0


def test_numeric_gsm8k_style() -> None:
    assert score("numeric", "so 3 + 4 = 7\n#### 7", "work...\n#### 7") == 1.0
    assert score("numeric", "#### 1,234 apples", "#### 1234") == 1.0
    assert score("numeric", "It costs $18.00 in total", "#### 18") == 1.0
    assert score("numeric", "#### 7 (I saw 3 numbers)", "#### 7") == 1.0
    assert score("numeric", "I saw 3 numbers", "#### 7") == 0.0
    assert score("numeric", "no number", "#### 7") == 0.0
    assert score("numeric", "7.4", "#### 7", tolerance=0.5) == 1.0
    with pytest.raises(MetricError):
        score("numeric", "1", "none")


def test_multiple_choice_bbh_style() -> None:
    assert choice_letter("(B)") == "B"
    assert choice_letter("B.") == "B"
    assert choice_letter("So the answer is (C).") == "C"
    assert choice_letter("(A) or (D) maybe") == "D"
    assert choice_letter("no idea") is None
    assert score("multiple_choice", "The answer is (A).", "(A)") == 1.0
    assert score("multiple_choice", "(B)", "(A)") == 0.0
    assert score("multiple_choice", "True", "True") == 1.0  # non-letter targets: exact match


def test_registry_errors() -> None:
    assert set(METRICS) >= {"exact_match", "numeric", "multiple_choice", "json_schema"}
    with pytest.raises(MetricError, match="unknown metric"):
        evaluate("bleu", ["a"], ["a"])
    with pytest.raises(MetricError, match="2 predictions but 1"):
        evaluate("exact_match", ["a", "b"], ["a"])


@pytest.mark.parametrize("n", [1, 5, 100])
def test_wilson_at_extremes_stays_in_unit_interval(n: int) -> None:
    low, high = wilson_interval(0, n)
    assert low == 0.0
    assert 0.0 < high <= 1.0
    low, high = wilson_interval(n, n)
    assert 0.0 <= low < 1.0
    assert high == 1.0


def test_summaries() -> None:
    binary = summarize("m", [1.0] * 8 + [0.0] * 2)
    assert binary.mean == pytest.approx(0.8)
    assert binary.n == 10
    assert 0.44 < binary.ci_low < 0.8 < binary.ci_high < 0.98
    continuous = [0.1, 0.5, 0.9, 0.3, 0.7]
    res = summarize("f1", continuous)
    assert 0.1 <= res.ci_low <= res.mean <= res.ci_high <= 0.9
    assert bootstrap_interval(continuous) == bootstrap_interval(continuous)  # seeded
    empty = summarize("m", [])
    assert (empty.n, empty.ci_low, empty.ci_high) == (0, 0.0, 1.0)
    _, result = evaluate("exact_match", ["a", "b"], ["a", "c"])
    assert result.name == "exact_match"
    assert result.mean == 0.5
