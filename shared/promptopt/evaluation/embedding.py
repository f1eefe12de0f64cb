"""embedding_similarity: cosine similarity of provider embeddings of prediction and reference.

Params: `model` (an embedding model id such as `gemini:text-embedding-005`,
`openai:text-embedding-3-small` or `sim:default`; default: the default embedding model of the
deployment's default model's provider) and `threshold` (optional, in [-1, 1]).

Each row scores max(0, cosine), so unrelated texts score 0 rather than negative; with a
threshold a row scores 1.0 when the cosine reaches it, else 0.0 (the aggregate then gets a
Wilson interval). Identical texts are embedded once; an empty (whitespace-only) text is never
sent: two empty texts score 1.0, one empty text 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from promptopt.evaluation.model_calls import (
    Deadline,
    ModelScores,
    ModelUsage,
    charge,
    check_params,
    metric_model,
    number_param,
    run_parallel,
)
from promptopt.evaluation.names import EMBEDDING_PARAMS, EMBEDDING_SIMILARITY
from promptopt.llm import registry
from promptopt.llm.types import EmbeddingResult, MalformedResponseError, Provider, Usage

NAME = EMBEDDING_SIMILARITY
PARAMS = EMBEDDING_PARAMS
TASK_TYPE = "SEMANTIC_SIMILARITY"  # Vertex's task type for comparing two texts
# Texts per embed() call run in parallel; the provider batches each slice under its own limits.
_SLICE = 1_000
_CONCURRENCY = 4


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity in [-1, 1]; 0.0 when either vector is zero."""
    if len(a) != len(b):
        raise MalformedResponseError(f"embeddings of different lengths ({len(a)} and {len(b)})")
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if not norm:
        return 0.0
    return max(-1.0, min(1.0, math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm))


def _texts(predictions: Sequence[str], references: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(t for t in (*predictions, *references) if t.strip()))


def upper_usd(
    predictions: Sequence[str],
    references: Sequence[str],
    params: Mapping[str, Any],
    *,
    inputs: Sequence[str] | None = None,
) -> float:
    """The most embedding every distinct non-empty text may cost, on the model the provider would use."""
    from promptopt.spend.estimate import embed_upper_usd

    check_params(NAME, params, PARAMS)
    model_id, named = metric_model(params)
    texts = _texts(predictions, references)
    if not texts:
        return 0.0
    # An empty request makes no call but names the embedding model the provider would use.
    model = registry.provider(str(model_id)).embed([], model=model_id.name if named else None).model
    return embed_upper_usd(model, sum(len(t) for t in texts))


def embedding_similarity(
    predictions: Sequence[str],
    references: Sequence[str],
    params: Mapping[str, Any],
    *,
    inputs: Sequence[str] | None = None,
    deadline: Deadline | None = None,
) -> ModelScores:
    """Score each row by the cosine of its prediction's and reference's embeddings."""
    check_params(NAME, params, PARAMS)
    threshold = number_param(params, "threshold", -1.0, 1.0)
    model_id, named = metric_model(params)
    provider = registry.provider(str(model_id))
    texts = _texts(predictions, references)
    named_model = model_id.name if named else None
    result = _embed(provider, texts, named_model=named_model, deadline=deadline or Deadline(None))
    vectors = dict(zip(texts, result.vectors, strict=True))
    scores: list[float] = []
    for prediction, reference in zip(predictions, references, strict=True):
        if prediction.strip() and reference.strip():
            similarity = cosine(vectors[prediction], vectors[reference])
        else:
            similarity = float(not prediction.strip() and not reference.strip())
        scores.append(float(similarity >= threshold) if threshold is not None else max(0.0, similarity))
    usage = ModelUsage(
        model=result.model,
        calls=result.calls,
        input_tokens=result.usage.input_tokens,
        cost_usd=result.cost_usd,
    )
    return ModelScores(scores=scores, usage=usage)


def _embed(
    provider: Provider, texts: list[str], *, named_model: str | None, deadline: Deadline
) -> EmbeddingResult:
    """Embed all texts, slices in parallel, merged in order."""
    if not texts:  # no request is made; the provider still names the model it would use
        return provider.embed([], model=named_model, task_type=TASK_TYPE)
    slices = [texts[i : i + _SLICE] for i in range(0, len(texts), _SLICE)]

    def embed(part: list[str]) -> EmbeddingResult:
        result = provider.embed(
            part, model=named_model, task_type=TASK_TYPE, timeout_s=deadline.call_timeout()
        )
        charge(
            ModelUsage(
                model=result.model,
                calls=result.calls,
                input_tokens=result.usage.input_tokens,
                cost_usd=result.cost_usd,
            )
        )
        return result

    parts = run_parallel(
        embed,
        slices,
        deadline=deadline,
        concurrency=_CONCURRENCY,
    )
    vectors = [vector for part in parts for vector in part.vectors]
    if len(vectors) != len(texts):
        raise MalformedResponseError(f"{parts[0].model}: {len(vectors)} embeddings for {len(texts)} texts")
    return EmbeddingResult(
        vectors=vectors,
        usage=Usage(
            input_tokens=sum(part.usage.input_tokens for part in parts),
            input_characters=sum(part.usage.input_characters for part in parts),
        ),
        cost_usd=math.fsum(part.cost_usd for part in parts),
        latency_s=max(part.latency_s for part in parts),
        model=parts[0].model,
        calls=sum(part.calls for part in parts),
    )
