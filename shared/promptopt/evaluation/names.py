"""Metric names and the params each takes, without the metrics themselves.

Request and response models validate metric names and params from here, so a function that only
lists jobs or experiments never imports the scoring code, the model-backed metrics or the LLM
registry. promptopt.evaluation.row_metrics and .metrics check at import that their registries
match these names.
"""

from __future__ import annotations

EMBEDDING_SIMILARITY = "embedding_similarity"
LLM_JUDGE = "llm_judge"

#: Deterministic metrics: scored one row at a time, without a model.
DETERMINISTIC_METRICS: tuple[str, ...] = (
    "exact_match",
    "contains",
    "regex",
    "token_f1",
    "json_valid",
    "json_schema",
    "numeric",
    "multiple_choice",
)
#: Model-backed metrics: they call a model and score all rows at once.
MODEL_METRIC_NAMES: tuple[str, ...] = (EMBEDDING_SIMILARITY, LLM_JUDGE)
METRIC_NAMES: tuple[str, ...] = tuple(sorted({*DETERMINISTIC_METRICS, *MODEL_METRIC_NAMES}))

EMBEDDING_PARAMS = frozenset({"model", "threshold"})
JUDGE_PARAMS = frozenset({"model", "rubric", "scale", "max_tokens"})

#: Which params each metric takes.
PARAMS: dict[str, frozenset[str]] = {
    "exact_match": frozenset(),
    "contains": frozenset(),
    "regex": frozenset({"pattern", "ignore_case"}),
    "token_f1": frozenset(),
    "json_valid": frozenset(),
    "json_schema": frozenset({"schema"}),
    "numeric": frozenset({"tolerance"}),
    "multiple_choice": frozenset(),
    EMBEDDING_SIMILARITY: EMBEDDING_PARAMS,
    LLM_JUDGE: JUDGE_PARAMS,
}
