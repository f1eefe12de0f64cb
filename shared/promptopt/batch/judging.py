"""Model-graded row metrics in a batch job: the chunk that answers a row has it graded.

A job whose metrics include llm_judge grades each answered row in the chunk task that answered
it, so judging fans out, retries and stops exactly like the task calls (see `runner`):

- the request is the one POST /api/v1/evaluate sends (`promptopt.evaluation.judge`: its system
  prompt, the rubric, the row's inputs, reference and answer, temperature 0, a JSON verdict), with
  each quoted text cut at MAX_SHOWN_CHARS, so one judge call has a size the estimate can bound;
- identical requests share one call, and with the job's cache on answers come from the response
  cache (same key: model, parameters, messages) and new ones are stored there;
- a retryable failure (429, 5xx, timeout) leaves the row pending for the queue's retry with
  backoff (its task answer is cached, so it is not paid twice); a permanent failure or an unusable
  answer becomes the row's judge error and the row scores 0, as in /evaluate;
- the verdict is written on the row's result, which is created once, so a re-delivered chunk
  neither judges nor counts a row twice; the judge's calls, tokens and cost are added to the row's
  and so count in the job's usage, its budget and the tenant's spend like task calls.

The judge model is `params.model`, else the deployment's default model (as for /evaluate); jobs
and experiments pin it when they are created, so a later change of the default changes no job.

embedding_similarity is graded the same way, in the chunk: one `embed` request per chunk and
metric for the distinct non-empty answers and references of its answered rows (the provider splits
it under its own limits), each row scoring as in /evaluate. Its calls, tokens and cost count like
the judge's (in `judge_calls`, the calls made to grade rows); a failed request is every row's
error (retried through the queue when it is retryable). There is no response cache for embeddings.
Its model is `params.model`, else the default embedding model of the default model's provider,
resolved when the chunk runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from promptopt.batch.cache import CachedAnswer
from promptopt.batch.calls import Outcome, OutcomeKind
from promptopt.evaluation.embedding import NAME as EMBEDDING
from promptopt.evaluation.embedding import PARAMS as EMBEDDING_PARAMS
from promptopt.evaluation.embedding import TASK_TYPE, cosine
from promptopt.evaluation.errors import MetricError
from promptopt.evaluation.judge import (
    SYSTEM_PROMPT,
    JudgeParseError,
    Scale,
    judge_prompt,
    judge_settings,
    parse_judgement,
    response_schema,
)
from promptopt.evaluation.model_calls import check_params, metric_model, number_param
from promptopt.evaluation.models import ROW_MODEL_METRICS
from promptopt.llm.errors import classify
from promptopt.llm.types import (
    CompletionRequest,
    EmbeddingResult,
    MalformedResponseError,
    ModelConfigError,
    Provider,
    Usage,
)

MODEL_GRADED = frozenset(ROW_MODEL_METRICS)  # metrics a chunk grades with a model call
EMBEDDED = frozenset({EMBEDDING})
JUDGED = MODEL_GRADED - EMBEDDED
MAX_SHOWN_CHARS = 12_000  # each text a judge is shown (inputs, reference, answer) is cut here
_CUT = " [...]"


@dataclass(frozen=True)
class Judge:
    """One llm_judge metric of a job, its params checked."""

    metric: str
    model: str
    rubric: str
    scale: Scale
    max_tokens: int


def judge_of(name: str, params: Mapping[str, Any]) -> Judge:
    """The checked judge of a metric's params; MetricError for bad params or a malformed model id."""
    found = judge_settings(params)  # the same checks as POST /evaluate's judge
    try:
        model = str(metric_model(params)[0])
    except ModelConfigError as exc:
        raise MetricError(f"params.model: {exc}") from None
    return Judge(
        metric=name, model=model, rubric=found.rubric, scale=found.scale, max_tokens=found.max_tokens
    )


@dataclass(frozen=True)
class Embedder:
    """One embedding_similarity metric of a job, its params checked."""

    metric: str
    model: str  # the provider's model id: params.model, else the deployment's default model
    named: str | None  # the embedding model params.model names (None: the provider's default)
    threshold: float | None


def embedder_of(name: str, params: Mapping[str, Any]) -> Embedder:
    """The checked embedder of a metric's params; MetricError for bad params or a malformed model id."""
    check_params(name, params, EMBEDDING_PARAMS)
    threshold = number_param(params, "threshold", -1.0, 1.0)
    try:
        model_id, named = metric_model(params)
    except ModelConfigError as exc:
        raise MetricError(f"params.model: {exc}") from None
    return Embedder(name, str(model_id), model_id.name if named else None, threshold)


def embedders_of(specs: list[dict[str, Any]]) -> list[Embedder]:
    """The embedding metrics among a job's metric specs, in order."""
    return [embedder_of(s["name"], s.get("params") or {}) for s in specs if s["name"] in EMBEDDED]


def check(name: str, params: Mapping[str, Any]) -> None:
    """MetricError unless a model-graded metric's params are usable."""
    if name in EMBEDDED:
        embedder_of(name, params)
    else:
        judge_of(name, params)


def embed(
    provider: Provider, embedder: Embedder, texts: list[str], *, timeout_s: float
) -> tuple[Outcome, Any]:
    """One embed request for `texts`, its failure classified as a chunk's model call is."""
    if not texts:
        empty = EmbeddingResult(
            vectors=[], usage=Usage(), cost_usd=0.0, latency_s=0.0, model=embedder.model, calls=0
        )
        return Outcome("ok"), empty
    try:
        result = provider.embed(texts, model=embedder.named, task_type=TASK_TYPE, timeout_s=timeout_s)
        if len(result.vectors) != len(texts):
            raise MalformedResponseError(f"{len(result.vectors)} embeddings for {len(texts)} texts")
    except Exception as exc:  # noqa: BLE001 - classified below; an unknown error is retried
        failure = classify(exc, model=embedder.model)
        if failure is None:  # unexpected: retrying is the safe choice (the last attempt records it)
            return Outcome("retryable", code="internal", message=f"{embedder.model} embed failed"), None
        kind: OutcomeKind = "retryable" if failure.retryable else "permanent"
        return Outcome(kind, code=failure.code, message=failure.message), None
    return Outcome("ok"), result


def similarity(embedder: Embedder, vectors: Mapping[str, list[float]], answer: str, reference: str) -> float:
    """A row's embedding_similarity score, as /evaluate computes it."""
    if answer.strip() and reference.strip():
        value = cosine(vectors[answer], vectors[reference])
    else:
        value = float(not answer.strip() and not reference.strip())
    return float(value >= embedder.threshold) if embedder.threshold is not None else max(0.0, value)


def embedded(result: EmbeddingResult, score: float, *, charged: bool) -> dict[str, Any]:
    """A row's embedding verdict; the request's usage is counted on one row only."""
    spent = {
        "calls": result.calls,
        "input_tokens": result.usage.input_tokens,
        "cost_usd": round(result.cost_usd, 8),
    }
    return _verdict_for(result.model, score=score, **(spent if charged else {}))


def judges_of(specs: list[dict[str, Any]]) -> list[Judge]:
    """The judged metrics among a job's metric specs (name and params), in order."""
    return [judge_of(s["name"], s.get("params") or {}) for s in specs if s["name"] in JUDGED]


def pinned(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A metric's params with the judge model written in (the default resolved now)."""
    if name not in JUDGED:
        return dict(params)
    return {**params, "model": judge_of(name, params).model}


def _shown(text: str, tag: str) -> str:
    # Escaped as the judge prompt would, then cut: the cut text is what the judge reads.
    quoted = text.replace(f"</{tag}>", f"<\\/{tag}>")
    return quoted if len(quoted) <= MAX_SHOWN_CHARS else quoted[: MAX_SHOWN_CHARS - len(_CUT)] + _CUT


def question(inputs: Mapping[str, str]) -> str:
    """The row's inputs as the judge sees them: `name: value` lines."""
    return "\n".join(f"{name}: {value}" for name, value in inputs.items())


def request(
    judge: Judge, inputs: Mapping[str, str], reference: str, answer: str, *, timeout_s: float
) -> CompletionRequest:
    """The judge request for one answered row."""
    prompt = judge_prompt(
        _shown(answer, "response"),
        _shown(reference, "reference"),
        rubric=judge.rubric,
        scale=judge.scale,
        question=_shown(question(inputs), "input"),
    )
    return CompletionRequest(
        user_prompt=prompt,
        system_prompt=SYSTEM_PROMPT,
        temperature=0.0,
        max_tokens=judge.max_tokens,
        response_schema=response_schema(judge.scale),
        timeout_s=timeout_s,
    )


def max_prompt_chars(judge: Judge, *, input_chars: int, reference_chars: int, answer_chars: int) -> int:
    """The most characters one judge request holds (system and user prompt), for the estimate.

    Each quoted text counts the smaller of its own bound, grown by escaping (a closing tag of 8 or
    more characters gains one), and MAX_SHOWN_CHARS (the cut).
    """
    frame = len(SYSTEM_PROMPT) + len(
        judge_prompt("", "", rubric=judge.rubric, scale=judge.scale, question="")
    )
    texts = (input_chars, reference_chars, answer_chars)
    return frame + sum(min(MAX_SHOWN_CHARS, math.ceil(max(0, n) * 9 / 8)) for n in texts)


def max_prompt_tokens(judge: Judge, chars_per_token: int, **bounds: int) -> int:
    """`max_prompt_chars` in tokens at a conservative characters-per-token ratio."""
    return math.ceil(max_prompt_chars(judge, **bounds) / chars_per_token)


def _verdict(judge: Judge | Embedder, **fields: Any) -> dict[str, Any]:
    return _verdict_for(judge.model, **fields)


def _verdict_for(model: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "score": 0.0,
        "reason": None,
        "error": None,
        "model": model,
        "cached": False,
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
    }
    return base | fields


def graded(judge: Judge, answer: CachedAnswer, *, cached: bool, cost_usd: float = 0.0) -> dict[str, Any]:
    """The verdict of an answer; an unusable one scores 0 with the reason as the row's judge error."""
    spent: dict[str, Any] = (
        {"cached": True}
        if cached
        else {
            "calls": 1,
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cost_usd": round(cost_usd, 8),
        }
    )
    try:
        score, reason = parse_judgement(answer.text, judge.scale)
    except JudgeParseError as exc:
        cut = " (cut off at max_tokens)" if answer.finish_reason.upper() in ("MAX_TOKENS", "LENGTH") else ""
        error = {"code": "unusable_judge_answer", "message": f"unusable judge answer{cut}: {exc}"}
        return _verdict(judge, error=error, **spent)
    return _verdict(judge, score=score, reason=reason or None, **spent)


def failed(
    judge: Judge | Embedder, outcome: Outcome, *, charged: bool, last_attempt: bool = False
) -> dict[str, Any]:
    """The verdict of a judge call that failed: the row scores 0 with the failure as its judge error."""
    message = outcome.message or "the chunk ran out of time before this row's grading call"
    if last_attempt:
        message += "; gave up after the last attempt"
    error = {"code": outcome.code or "not_run", "message": message}
    return _verdict(judge, error=error, calls=int(charged and outcome.kind == "permanent"))


def answer_of(outcome: Outcome) -> tuple[CachedAnswer, float]:
    """A successful outcome's answer (as the cache keeps it) and its cost."""
    completion = outcome.completion
    assert completion is not None
    answer = CachedAnswer(
        text=completion.text,
        finish_reason=completion.finish_reason,
        input_tokens=completion.usage.input_tokens,
        output_tokens=completion.usage.output_tokens,
    )
    return answer, completion.cost_usd


def usage_fields(verdicts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a row's verdicts add to its result's counters."""
    return {
        "n_judge_calls": sum(int(v["calls"]) for v in verdicts.values()),
        "input_tokens": sum(int(v["input_tokens"]) for v in verdicts.values()),
        "output_tokens": sum(int(v["output_tokens"]) for v in verdicts.values()),
        "cost_usd": math.fsum(float(v["cost_usd"]) for v in verdicts.values()),
    }
