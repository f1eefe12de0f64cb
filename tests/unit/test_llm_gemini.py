"""Gemini provider through the real google-genai client against a local fake Vertex server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from promptopt.llm import gemini, pricing, registry
from promptopt.llm.gemini import GeminiProvider, RetryPolicy
from promptopt.llm.types import (
    Completion,
    CompletionRequest,
    EmptyResponseError,
    MalformedResponseError,
    ModelBlockedError,
    ModelConfigError,
    ModelError,
    ModelRequestError,
    RetryableModelError,
)
from tests.fakes.model_servers import FakeVertex, fake_embedding

FAST = RetryPolicy(attempts=3, initial_delay_s=0.01, max_delay_s=0.02, jitter=0.01)


@pytest.fixture(autouse=True)
def _no_real_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROMPTOPT_FORBID_REAL_MODELS", "1")
    monkeypatch.delenv("PROMPTOPT_PRICES", raising=False)
    pricing.reset()
    yield
    gemini.reset()
    registry.reset()
    pricing.reset()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVertex]:
    with FakeVertex(input_tokens=1000, output_tokens=200) as server:
        yield server


def make(fake: FakeVertex, retry: RetryPolicy = FAST) -> GeminiProvider:
    return GeminiProvider(
        "gemini-2.5-flash",
        project="p1",
        location="us-central1",
        base_url=fake.url,
        access_token="t",
        retry=retry,
    )


def call(fake: FakeVertex, *script: str, **kw: Any) -> tuple[Any, int]:
    """Run one completion after scripting the fake; returns (Completion or the error, requests made)."""
    fake.script(*script)
    before = fake.count
    result: Completion | ModelError
    try:
        result = make(fake).complete(CompletionRequest(user_prompt="What is 6*7?", **kw))
    except ModelError as exc:
        result = exc
    return result, fake.count - before


def test_success_usage_cost_and_request_shape(fake: FakeVertex) -> None:
    result, n = call(fake, "ok", system_prompt="Be terse.", response_schema={"type": "object"})
    assert n == 1
    assert result.text == "42"
    assert result.usage.input_tokens == 1000
    assert result.usage.output_tokens == 200
    assert result.cost_usd == pytest.approx((1000 * 0.30 + 200 * 2.50) / 1e6)
    assert result.model == "gemini:gemini-2.5-flash"
    assert result.finish_reason == "STOP"
    sent = fake.requests[-1]
    model_path = "publishers/google/models/gemini-2.5-flash:generateContent"
    assert sent.path == f"/v1beta1/projects/p1/locations/us-central1/{model_path}"
    assert sent.headers["Authorization"] == "Bearer t"
    assert sent.body["systemInstruction"]["parts"][0]["text"] == "Be terse."
    assert sent.body["generationConfig"]["responseMimeType"] == "application/json"
    assert sent.body["generationConfig"]["responseJsonSchema"] == {"type": "object"}


def test_429_then_success_is_retried_by_the_sdk(fake: FakeVertex) -> None:
    result, n = call(fake, "429", "ok")
    assert n == 2
    assert result.text == "42"


def test_5xx_forever_becomes_retryable_after_bounded_attempts(fake: FakeVertex) -> None:
    result, n = call(fake, *["503"] * FAST.attempts)
    assert isinstance(result, RetryableModelError)
    assert result.status == 503
    assert n == FAST.attempts


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("400", ModelRequestError),
        ("malformed", MalformedResponseError),
        ("blocked", ModelBlockedError),
        ("safety", ModelBlockedError),
        ("empty", EmptyResponseError),
    ],
)
def test_failures_map_to_typed_errors(fake: FakeVertex, behaviour: str, error: type[Exception]) -> None:
    result, n = call(fake, behaviour)
    assert isinstance(result, error), result
    assert n == 1  # permanent failures are not retried
    if isinstance(result, ModelBlockedError):
        assert result.reason == "SAFETY"


def test_timeout_becomes_retryable(fake: FakeVertex) -> None:
    fake.slow_s = 0.8
    fake.script("slow")
    provider = make(fake, RetryPolicy(attempts=1))
    with pytest.raises(RetryableModelError):
        provider.complete(CompletionRequest(user_prompt="hi", timeout_s=0.3))


def test_client_is_cached_and_shared_across_threads(fake: FakeVertex) -> None:
    results: list[str] = []

    def work() -> None:
        results.append(make(fake).complete(CompletionRequest(user_prompt="hi")).text)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["42"] * 6
    assert make(fake)._client() is make(fake)._client()
    assert len(gemini._clients) == 1


def test_real_endpoint_refused_under_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_GEMINI_BASE_URL", raising=False)
    with pytest.raises(ModelConfigError, match="PROMPTOPT_FORBID_REAL_MODELS"):
        registry.provider("gemini:gemini-2.5-pro").complete(CompletionRequest(user_prompt="hi"))


def test_registry_configures_from_env(fake: FakeVertex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_GEMINI_BASE_URL", fake.url)
    monkeypatch.setenv("PROMPTOPT_GEMINI_ACCESS_TOKEN", "t")
    fake.script("ok")
    result = registry.provider("gemini:gemini-2.0-flash").complete(CompletionRequest(user_prompt="hi"))
    assert result.text == "42"
    assert result.cost_usd == pytest.approx((1000 * 0.15 + 200 * 0.60) / 1e6)


def test_prices_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptopt.llm.types import Usage

    monkeypatch.setenv("PROMPTOPT_PRICES", '{"gemini:gemini-2.5-flash": {"input": 1, "output": 2}}')
    pricing.reset()
    assert pricing.cost("gemini:gemini-2.5-flash-001", Usage(1_000_000, 1_000_000)) == pytest.approx(3.0)
    assert pricing.cost("sim:x", Usage(10, 10)) == 0.0
    assert pricing.cost("openai:gpt-x", Usage(10, 10)) == 0.0


# Embeddings -------------------------------------------------------------------------------


def embed(fake: FakeVertex, texts: list[str], *script: str, **kw: Any) -> tuple[Any, list[Any]]:
    """Embed after scripting the fake; returns (EmbeddingResult or the error, requests made)."""
    fake.script(*script)
    before = fake.count
    result: Any
    try:
        result = make(fake).embed(texts, **kw)
    except ModelError as exc:
        result = exc
    return result, fake.requests[before:]


def test_text_embedding_goes_to_predict_with_usage_and_character_cost(fake: FakeVertex) -> None:
    texts = ["the cat sat", "a dog ran far"]
    result, sent = embed(fake, texts, task_type="SEMANTIC_SIMILARITY")
    assert result.model == "gemini:text-embedding-005"  # the default embedding model
    assert len(result.vectors) == 2
    assert result.vectors[0] == fake_embedding("the cat sat")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (3 + 4, 0)
    assert result.usage.input_characters == len("thecatsat") + len("adogranfar")  # billableCharacterCount
    assert result.cost_usd == pytest.approx(result.usage.input_characters * 0.025 / 1e6)
    assert result.calls == 1
    (request,) = sent
    assert (
        request.path
        == "/v1beta1/projects/p1/locations/us-central1/publishers/google/models/text-embedding-005:predict"
    )
    assert request.headers["Authorization"] == "Bearer t"
    assert request.body["instances"] == [{"content": t, "task_type": "SEMANTIC_SIMILARITY"} for t in texts]


def test_embeddings_are_batched_under_vertex_limits(fake: FakeVertex) -> None:
    result, sent = embed(fake, [f"text number {i}" for i in range(300)])
    assert [len(r.body["instances"]) for r in sent] == [250, 50]
    assert result.calls == 2
    assert len(result.vectors) == 300
    assert result.vectors[299] == fake_embedding("text number 299")
    long = ["word " * 3000] * 12  # ~2,048 estimated tokens each: 20,000-token requests hold 9
    _, sent = embed(fake, long)
    assert [len(r.body["instances"]) for r in sent] == [9, 3]


def test_gemini_embedding_model_uses_embed_content_and_token_prices(fake: FakeVertex) -> None:
    result, sent = embed(fake, ["one two", "three"], model="gemini:gemini-embedding-001")
    assert sent[0].path.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert [r["content"]["parts"][0]["text"] for r in sent[0].body["requests"]] == ["one two", "three"]
    assert result.usage.input_tokens == 3  # usageMetadata.promptTokenCount
    assert result.cost_usd == pytest.approx(3 * 0.15 / 1e6)
    single, sent = embed(fake, ["alone here"], model="gemini-embedding-001")
    assert sent[0].path.endswith("/models/gemini-embedding-001:embedContent")
    assert single.usage.input_tokens == 2
    assert single.vectors == [fake_embedding("alone here")]


def test_an_embedding_model_id_names_the_default(fake: FakeVertex) -> None:
    provider = GeminiProvider(
        "gemini-embedding-001", project="p1", location="us-central1", base_url=fake.url, access_token="t"
    )
    assert provider.embed(["x y"]).model == "gemini:gemini-embedding-001"
    with pytest.raises(ModelConfigError, match="not a gemini model"):
        provider.embed(["x"], model="openai:text-embedding-3-small")
    assert provider.embed([]).calls == 0


def test_embedding_failures_map_to_typed_errors(fake: FakeVertex) -> None:
    result, sent = embed(fake, ["a b"], "429", "ok")
    assert len(sent) == 2
    assert len(result.vectors) == 1
    result, sent = embed(fake, ["a b"], *["503"] * FAST.attempts)
    assert isinstance(result, RetryableModelError)
    assert len(sent) == FAST.attempts
    for behaviour, error in (("400", ModelRequestError), ("malformed", MalformedResponseError)):
        result, _ = embed(fake, ["a b"], behaviour)
        assert isinstance(result, error), behaviour
    result, _ = embed(fake, ["a b"], "empty")  # no embeddings for the texts sent
    assert isinstance(result, MalformedResponseError)


def test_embed_refuses_real_endpoint_under_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_GEMINI_BASE_URL", raising=False)
    with pytest.raises(ModelConfigError, match="PROMPTOPT_FORBID_REAL_MODELS"):
        registry.provider("gemini:text-embedding-005").embed(["hi"])
