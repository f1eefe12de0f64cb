"""POST /api/v1/inference/complete through the function's real app: sim, fake Vertex, fake OpenAI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from promptopt import secrets
from promptopt.auth import Principal, Role
from promptopt.inference import complete as inference
from promptopt.inference.errors import ModelBusy
from promptopt.inference.models import CompletionCreate
from promptopt.llm import gemini, openai_compat, pricing, registry
from promptopt.llm.types import Completion, CompletionRequest
from tests.conftest import Api
from tests.fakes.model_servers import FakeOpenAI, FakeVertex
from tests.support import ROOT

pytestmark = pytest.mark.integration

PATH = "/api/v1/inference/complete"
INLINE = {"system_prompt": "Answer briefly.", "output_prompt": "Q: {input}\nA:"}


@pytest.fixture(autouse=True)
def _models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROMPTOPT_FORBID_REAL_MODELS", "1")
    monkeypatch.delenv("PROMPTOPT_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("PROMPTOPT_PRICES", raising=False)
    monkeypatch.setenv("PROMPTOPT_GEMINI_ACCESS_TOKEN", "fake-token")
    monkeypatch.setenv("PROMPTOPT_GEMINI_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("PROMPTOPT_GEMINI_RETRY_INITIAL_DELAY_S", "0.01")
    monkeypatch.setenv("PROMPTOPT_GEMINI_RETRY_MAX_DELAY_S", "0.02")
    monkeypatch.setenv("PROMPTOPT_SECRET_OPENAI_API_KEY", "sk-test")
    _reset()
    yield
    _reset()


def _reset() -> None:
    registry.reset()
    gemini.reset()
    openai_compat.reset()
    secrets.reset()
    pricing.reset()


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex(reply="Paris", input_tokens=12, output_tokens=3) as server:
        yield server


@pytest.fixture(scope="module")
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply="Berlin", input_tokens=9, output_tokens=2) as server:
        yield server


def complete(api: Api, tenant: str, body: Any, role: str = "editor", **kw: Any) -> Any:
    return api.call("inference_complete", "POST", PATH, tenant=tenant, role=role, json=body, **kw)


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.content_type == "application/problem+json"
    body: dict[str, Any] = r.get_json()
    assert body["code"] == code
    return body


def test_sim_default_with_an_inline_prompt(api: Api, tenant: str) -> None:
    r = complete(api, tenant, {**INLINE, "user_input": "What is 2 + 3?"})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["model"] == "sim:default"
    assert body["simulated"] is True
    assert body["prompt"] is None
    assert body["usage"]["input_tokens"] > 0
    assert body["usage"]["output_tokens"] > 0
    assert body["cost_usd"] == 0
    assert "5" in body["text"]
    assert set(body) == {
        "text", "model", "usage", "cost_usd", "latency_ms", "finish_reason", "prompt", "simulated"
    }  # fmt: skip


def test_stored_prompt_by_id_and_by_label(api: Api, tenant: str) -> None:
    created = api.call(
        "prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json={"output_prompt": "Q: {question}"}
    ).get_json()
    pid = created["prompt_id"]
    api.call("prompts_update", "PUT", f"/api/v1/prompts/{pid}", tenant=tenant,
             json={"output_prompt": "Question: {question}"}, headers={"If-Match": '"v1"'})  # fmt: skip
    api.call("prompts_label_set", "PUT", f"/api/v1/prompts/{pid}/labels/production", tenant=tenant,
             json={"version": 1})  # fmt: skip
    latest = complete(api, tenant, {"prompt_id": pid, "variables": {"question": "7 + 1"}, "model": "sim:x"})
    assert latest.status_code == 200, latest.get_data(as_text=True)
    assert latest.get_json()["prompt"] == {"prompt_id": pid, "version": 2}
    assert latest.get_json()["model"] == "sim:x"
    labelled = complete(
        api, tenant, {"prompt_id": pid, "label": "production", "variables": {"question": "1"}}
    )
    assert labelled.get_json()["prompt"] == {"prompt_id": pid, "version": 1}
    problem(complete(api, tenant, {"prompt_id": pid, "user_input": "hi"}), 400, "missing_variables")
    other = complete(api, "t-someone-else", {"prompt_id": pid, "variables": {"question": "1"}})
    problem(other, 404, "prompt_not_found")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"output_prompt": "{input} and {context}", "user_input": "x"}, 400, "missing_variables"),
        ({**INLINE, "prompt_id": "pr_0123456789abcdef0123", "user_input": "x"}, 400, "validation_failed"),
        ({"user_input": "x"}, 400, "validation_failed"),
        ({"system_prompt": "only a system prompt", "user_input": "x"}, 400, "validation_failed"),
        ({**INLINE, "version": 2, "user_input": "x"}, 400, "validation_failed"),
        ({**INLINE, "user_input": "x", "variables": {"input": "y"}}, 400, "validation_failed"),
        ({**INLINE, "user_input": "x", "temperature": 2.5}, 400, "validation_failed"),
        ({**INLINE, "user_input": "x", "max_tokens": 8193}, 400, "validation_failed"),
        ({**INLINE, "user_input": "x", "surprise": 1}, 400, "validation_failed"),
        ({**INLINE, "user_input": "x", "model": "nope:abc"}, 400, "unknown_model"),
        ({**INLINE, "user_input": "x", "model": "gemini"}, 400, "unknown_model"),
        ({"prompt_id": "pr_0123456789abcdef0123", "user_input": "x"}, 404, "prompt_not_found"),
    ],
)
def test_bad_requests(api: Api, tenant: str, body: dict[str, Any], status: int, code: str) -> None:
    found = problem(complete(api, tenant, body), status, code)
    if code == "missing_variables":
        assert found["extra"]["missing"] == ["context"]


def test_both_user_input_and_variables_fill_the_template(api: Api, tenant: str) -> None:
    body = {"output_prompt": "{context} Q: {input}", "user_input": "2 + 2", "variables": {"context": "Math."}}
    r = complete(api, tenant, body)
    assert r.status_code == 200, r.get_data(as_text=True)


def test_viewer_may_not_spend_budget(api: Api, tenant: str) -> None:
    problem(complete(api, tenant, {**INLINE, "user_input": "x"}, role="viewer"), 403, "role_too_low")


def test_gemini_against_fake_vertex(
    api: Api, tenant: str, vertex: FakeVertex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_GEMINI_BASE_URL", vertex.url)
    model = "gemini:gemini-2.5-flash"
    before = vertex.count
    r = complete(api, tenant, {**INLINE, "user_input": "Capital of France?", "model": model})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert (body["text"], body["model"], body["simulated"]) == ("Paris", model, False)
    assert body["usage"] == {"input_tokens": 12, "output_tokens": 3}
    assert body["cost_usd"] == pytest.approx((12 * 0.30 + 3 * 2.50) / 1e6)
    sent = vertex.requests[before].body
    assert sent["contents"][0]["parts"][0]["text"] == "Q: Capital of France?\nA:"
    assert sent["systemInstruction"]["parts"][0]["text"] == "Answer briefly."

    vertex.script("429", "429")  # both SDK attempts: still busy
    busy = complete(api, tenant, {**INLINE, "user_input": "x", "model": model})
    assert problem(busy, 503, "model_busy")
    assert busy.headers["Retry-After"] == "5"

    vertex.script("blocked")
    blocked = problem(
        complete(api, tenant, {**INLINE, "user_input": "x", "model": model}), 422, "model_blocked"
    )
    assert blocked["extra"]["reason"] == "SAFETY"

    vertex.script("400")
    problem(
        complete(api, tenant, {**INLINE, "user_input": "x", "model": model}), 422, "model_rejected_request"
    )
    vertex.script("empty")
    problem(complete(api, tenant, {**INLINE, "user_input": "x", "model": model}), 502, "model_bad_response")


def test_openai_against_fake(
    api: Api, tenant: str, openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_OPENAI_BASE_URL", openai.base_url)
    body = {**INLINE, "user_input": "Capital of Germany?", "model": "openai:gpt-test", "max_tokens": 50}
    r = complete(api, tenant, body)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert (r.get_json()["text"], r.get_json()["usage"]) == (
        "Berlin",
        {"input_tokens": 9, "output_tokens": 2},
    )
    sent = openai.requests[-1]
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert sent.body["max_tokens"] == 50

    monkeypatch.delenv("PROMPTOPT_SECRET_OPENAI_API_KEY")
    _reset()
    missing = problem(complete(api, tenant, body), 503, "model_not_configured")
    assert "PROMPTOPT_SECRET_OPENAI_API_KEY" in missing["detail"]
    assert "Retry-After" not in complete(api, tenant, body).headers


def test_real_endpoints_are_refused_in_tests(api: Api, tenant: str) -> None:
    body = {**INLINE, "user_input": "x", "model": "openai:gpt-test"}
    found = problem(complete(api, tenant, body), 503, "model_not_configured")
    assert "PROMPTOPT_FORBID_REAL_MODELS" in found["detail"]


def test_the_deadline_ends_a_slow_call(monkeypatch: pytest.MonkeyPatch) -> None:
    class Slow:
        model = "sim:slow"

        def complete(self, request: CompletionRequest) -> Completion:
            time.sleep(0.5)
            raise AssertionError("abandoned calls are not awaited")

    monkeypatch.setattr(registry, "provider", lambda model_id: Slow())
    principal = Principal(subject="u", tenant="t-deadline", role=Role.editor)
    body = CompletionCreate.model_validate({**INLINE, "user_input": "x"})
    started = time.monotonic()
    with pytest.raises(ModelBusy):
        inference.complete(principal=principal, body=body, deadline_s=0.1)
    assert time.monotonic() - started < 0.4
    assert inference.deadline_for(30) == 25


def test_a_sim_call_does_not_import_provider_sdks() -> None:
    script = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "shared")!r}]
from tests.support import claims_header, load_app
app = load_app("inference_complete")
body = {INLINE | {"user_input": "hi"}!r}
r = app.test_client().post({PATH!r}, json=body, headers=claims_header("t-x", "editor"))
assert r.status_code == 200, r.get_data(as_text=True)
loaded = [m for m in ("google.genai", "google.cloud.firestore", "httpx") if m in sys.modules]
print(loaded)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "google.genai" not in done.stdout
