"""OpenAI-compatible provider over httpx against a local fake server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promptopt import secrets
from promptopt.llm import openai_compat, pricing, registry
from promptopt.llm.openai_compat import OpenAICompatProvider
from promptopt.llm.types import (
    CompletionRequest,
    EmptyResponseError,
    MalformedResponseError,
    ModelBlockedError,
    ModelConfigError,
    ModelRequestError,
    RetryableModelError,
)
from tests.fakes.model_servers import FakeOpenAI, fake_embedding


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROMPTOPT_FORBID_REAL_MODELS", "1")
    monkeypatch.setenv("PROMPTOPT_SECRET_OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PROMPTOPT_PRICES", '{"openai:gpt-test": {"input": 2, "output": 4}}')
    pricing.reset()
    secrets.reset()
    yield
    openai_compat.reset()
    registry.reset()
    secrets.reset()
    pricing.reset()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(input_tokens=100, output_tokens=50) as server:
        yield server


def make(fake: FakeOpenAI) -> OpenAICompatProvider:
    return OpenAICompatProvider("gpt-test", base_url=fake.base_url, max_retries=2, backoff_s=0.01)


def test_success_usage_cost_and_request(fake: FakeOpenAI) -> None:
    fake.script("ok")
    result = make(fake).complete(
        CompletionRequest(user_prompt="hi", system_prompt="sys", response_schema={"type": "object"})
    )
    assert (result.text, result.usage.input_tokens, result.usage.output_tokens) == ("42", 100, 50)
    assert result.cost_usd == pytest.approx((100 * 2 + 50 * 4) / 1e6)
    sent = fake.requests[-1]
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert [m["role"] for m in sent.body["messages"]] == ["system", "user"]
    assert sent.body["response_format"]["json_schema"]["schema"] == {"type": "object"}


def test_429_then_success(fake: FakeOpenAI) -> None:
    fake.script("429", "ok")
    before = fake.count
    assert make(fake).complete(CompletionRequest(user_prompt="hi")).text == "42"
    assert fake.count - before == 2


def test_5xx_forever_is_retryable_after_bounded_retries(fake: FakeOpenAI) -> None:
    fake.script("500", "500", "500")
    before = fake.count
    with pytest.raises(RetryableModelError) as info:
        make(fake).complete(CompletionRequest(user_prompt="hi"))
    assert info.value.status == 500
    assert fake.count - before == 3


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("400", ModelRequestError),
        ("malformed", MalformedResponseError),
        ("safety", ModelBlockedError),
        ("empty", EmptyResponseError),
    ],
)
def test_failures_map_to_typed_errors(fake: FakeOpenAI, behaviour: str, error: type[Exception]) -> None:
    fake.script(behaviour)
    before = fake.count
    with pytest.raises(error):
        make(fake).complete(CompletionRequest(user_prompt="hi"))
    assert fake.count - before == 1


def test_timeout_is_retryable(fake: FakeOpenAI) -> None:
    fake.slow_s = 0.5
    fake.script("slow")
    provider = OpenAICompatProvider("gpt-test", base_url=fake.base_url, max_retries=0)
    with pytest.raises(RetryableModelError):
        provider.complete(CompletionRequest(user_prompt="hi", timeout_s=0.2))


def test_fixed_latency_is_measured() -> None:
    with FakeOpenAI(latency_s=0.05) as slow:
        result = make(slow).complete(CompletionRequest(user_prompt="hi"))
    assert result.latency_s >= 0.05


def test_pooled_client_is_shared() -> None:
    assert openai_compat.http_client() is openai_compat.http_client()


def test_key_from_secrets_dir(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROMPTOPT_SECRET_OPENAI_API_KEY")
    monkeypatch.setenv("PROMPTOPT_SECRETS_DIR", str(tmp_path))
    (tmp_path / "openai_api_key").write_text("sk-file\n")
    fake.script("ok")
    make(fake).complete(CompletionRequest(user_prompt="hi"))
    assert fake.requests[-1].headers["Authorization"] == "Bearer sk-file"


def test_missing_key_and_real_endpoint_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelConfigError, match="FORBID"):
        registry.provider("openai:gpt-4o").complete(CompletionRequest(user_prompt="hi"))
    monkeypatch.delenv("PROMPTOPT_SECRET_OPENAI_API_KEY")
    monkeypatch.delenv("PROMPTOPT_SECRETS_DIR", raising=False)
    with pytest.raises(ModelConfigError, match="no API key"):
        OpenAICompatProvider("m", base_url="http://127.0.0.1:9/v1").complete(
            CompletionRequest(user_prompt="hi")
        )


def test_embed_posts_to_embeddings_in_index_order_with_usage(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_PRICES", '{"openai:text-embedding-test": {"input": 0.5, "output": 0}}')
    pricing.reset()
    fake.script("ok")
    before = fake.count
    result = make(fake).embed(["the cat sat", "a dog", "fish"], model="text-embedding-test")
    assert result.vectors == [fake_embedding(t) for t in ("the cat sat", "a dog", "fish")]  # served reversed
    assert (result.usage.input_tokens, result.calls, result.model) == (6, 1, "openai:text-embedding-test")
    assert result.cost_usd == pytest.approx(6 * 0.5 / 1e6)
    (sent,) = fake.requests[before:]
    assert sent.path == "/v1/embeddings"
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert sent.body == {
        "model": "text-embedding-test",
        "input": ["the cat sat", "a dog", "fish"],
        "encoding_format": "float",
    }


def test_embed_batches_and_defaults_to_a_small_embedding_model(fake: FakeOpenAI) -> None:
    before = fake.count
    result = make(fake).embed([f"row {i}" for i in range(300)])
    sent = fake.requests[before:]
    assert [len(r.body["input"]) for r in sent] == [256, 44]
    assert {r.body["model"] for r in sent} == {"text-embedding-3-small"}
    assert result.calls == 2
    assert result.vectors[-1] == fake_embedding("row 299")
    assert result.cost_usd == 0.0  # unconfigured openai models cost 0


def test_embed_retries_then_maps_failures(fake: FakeOpenAI) -> None:
    fake.script("429", "ok")
    before = fake.count
    assert len(make(fake).embed(["a"]).vectors) == 1
    assert fake.count - before == 2
    fake.script("500", "500", "500")
    with pytest.raises(RetryableModelError):
        make(fake).embed(["a"])
    for behaviour, error in (
        ("400", ModelRequestError),
        ("malformed", MalformedResponseError),
        ("empty", MalformedResponseError),
    ):
        fake.script(behaviour)
        with pytest.raises(error):
            make(fake).embed(["a"])
