"""Hostile input through the function apps: no fetches, no backtracking, no 5xx, no echoes.

Each test here stands for a class of defect found by attacking the local stack: user JSON Schemas
that made the function fetch URLs or read files, regexes that held a worker for a minute, numbers
that Firestore could not store, lax coercion, forged page tokens and error details that quoted
the caller's text.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptopt import config
from tests.conftest import Api

pytestmark = pytest.mark.integration

EVALUATE = "/api/v1/evaluate"
COMPLETE = "/api/v1/inference/complete"
PROMPT = {"name": "qa", "output_prompt": "Q: {input}\nA:"}


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A real local HTTP server recording whether anything fetched from it."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _simulated_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PROMPTOPT_FORBID_REAL_MODELS", "1")
    monkeypatch.delenv("PROMPTOPT_DEFAULT_MODEL", raising=False)
    config.reset()
    yield
    config.reset()


def _problem(r: Any, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.content_type == "application/problem+json"
    out: dict[str, Any] = r.get_json()
    return out


def _evaluate(api: Api, tenant: str, metric: dict[str, Any], prediction: str = '"x"') -> Any:
    body = {"predictions": [prediction], "references": ["x"], "metrics": [metric]}
    return api.call("evaluation_score", "POST", EVALUATE, tenant=tenant, role="viewer", json=body)


def _remote(url: str, secret: Path) -> list[dict[str, Any]]:
    return [
        {"$ref": f"{url}/x"},
        {"$ref": secret.as_uri()},
        {"type": "object", "properties": {"a": {"type": "array", "items": {"$ref": f"{url}/deep"}}}},
        {"$defs": {"d": {"allOf": [{"$ref": f"{url}/defs"}]}}, "$ref": "#/$defs/d"},
        {"$dynamicRef": f"{url}/dynamic"},
        {"$schema": "https://json-schema.org/draft/2019-09/schema", "$recursiveRef": f"{url}/r"},
        {"$id": f"{url}/base/", "$ref": "relative.json"},
        {"$ref": "http://10.255.255.1/unreachable"},
    ]


# 1. SSRF and local file reads through user schemas ------------------------------------------


def test_user_schemas_never_fetch_or_read_files(
    api: Api, tenant: str, schema_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, hits = schema_server
    secret = tmp_path / "secret.json"
    secret.write_text('{"const": "s3cr3t"}')
    for schema in _remote(url, secret):
        out = _problem(
            _evaluate(api, tenant, {"name": "json_schema", "params": {"schema": schema}}, '"s3cr3t"')
        )
        assert out["code"] == "validation_failed"
        assert out["errors"][0]["loc"] == "body.metrics.0"
        assert "local to the schema" in out["errors"][0]["msg"]
        body = {"output_prompt": "{input}", "user_input": "hi", "response_schema": schema}
        out = _problem(
            api.call("inference_complete", "POST", COMPLETE, tenant=tenant, role="editor", json=body)
        )
        assert out["errors"][0]["loc"] == "body.response_schema"
    assert hits == []


# 2. ReDoS ------------------------------------------------------------------------------------


def test_user_regexes_run_in_linear_time(api: Api, tenant: str) -> None:
    started = time.perf_counter()
    r = _evaluate(api, tenant, {"name": "regex", "params": {"pattern": "^(a+)+$"}}, "a" * 19_000 + "!")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["metrics"][0]["mean"] == 0.0
    schema = {"type": "string", "pattern": "^(a+)+$"}
    r = _evaluate(
        api, tenant, {"name": "json_schema", "params": {"schema": schema}}, json.dumps("a" * 19_000 + "!")
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize("pattern", ["(a)\\1", "foo(?=bar)", "(?<!x)y", "x" * 2_001])
def test_patterns_re2_cannot_run_are_refused_at_the_door(api: Api, tenant: str, pattern: str) -> None:
    out = _problem(_evaluate(api, tenant, {"name": "regex", "params": {"pattern": pattern}}))
    assert out["code"] == "validation_failed"
    assert "RE2" in out["errors"][0]["msg"] or "longer than" in out["errors"][0]["msg"]


# 3a. Malformed schemas are 400s, not 500s ------------------------------------------------------

MALFORMED = [
    {"type": "object", "properties": 5},
    {"type": "object", "properties": ["a"]},
    {"type": "object", "properties": {"a": {"type": "array", "items": 5}}},
    {"$ref": "#/$defs/missing"},
    {"type": "nonsense"},
]


@pytest.mark.parametrize("schema", MALFORMED)
def test_malformed_response_schemas_are_400(api: Api, tenant: str, schema: dict[str, Any]) -> None:
    body = {"output_prompt": "{input}", "user_input": "2 + 3", "response_schema": schema}
    out = _problem(api.call("inference_complete", "POST", COMPLETE, tenant=tenant, role="editor", json=body))
    assert out["code"] == "validation_failed"
    assert out["errors"][0]["loc"] == "body.response_schema"
    out = _problem(_evaluate(api, tenant, {"name": "json_schema", "params": {"schema": schema}}))
    assert out["code"] == "validation_failed"


# 3b. Numbers: int64 and finite, everywhere -------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"output_prompt": "{input}", "metadata": {"n": 9223372036854775808}}',
        '{"output_prompt": "{input}", "metadata": {"n": -9223372036854775809}}',
        '{"output_prompt": "{input}", "metadata": {"n": 1000000000000000000000000000000}}',
        '{"output_prompt": "{input}", "metadata": {"n": NaN}}',
        '{"output_prompt": "{input}", "metadata": {"n": Infinity}}',
        '{"output_prompt": "{input}", "metadata": {"n": -Infinity}}',
        '{"output_prompt": "{input}", "metadata": {"n": 1e400}}',
    ],
)
def test_numbers_firestore_cannot_hold_are_400(api: Api, tenant: str, raw: str) -> None:
    r = api.call(
        "prompts_create", "POST", "/api/v1/prompts", tenant=tenant, data=raw, content_type="application/json"
    )
    assert _problem(r)["code"] == "number_out_of_range"


def test_the_largest_int64_is_stored(api: Api, tenant: str) -> None:
    body = {**PROMPT, "metadata": {"max": 2**63 - 1, "min": -(2**63), "f": 1.5e308}}
    r = api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json=body)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["metadata"] == body["metadata"]


_NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30, -(10**30), 0, 1, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5) | _NUMBERS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _bodies(pid: str) -> st.SearchStrategy[tuple[str, str, str, Any]]:
    """(function, method, path, body) with numbers and nested values where users may put them."""
    return st.one_of(
        st.builds(
            lambda v: ("prompts_create", "POST", "/api/v1/prompts", {**PROMPT, "metadata": {"k": v}}), _JSON
        ),
        st.builds(
            lambda v: ("prompts_label_set", "PUT", f"/api/v1/prompts/{pid}/labels/prod", {"version": v}),
            _JSON,
        ),
        st.builds(
            lambda v, w: (
                "evaluation_score",
                "POST",
                EVALUATE,
                {
                    "predictions": ["7", '{"a": 1}'],
                    "references": ["#### 7", "x"],
                    "metrics": [
                        {"name": "numeric", "params": {"tolerance": v}},
                        {"name": "json_schema", "params": {"schema": {"type": "object", "maxProperties": w}}},
                    ],
                },
            ),
            _JSON,
            _JSON,
        ),
        st.builds(
            lambda t, m, v, s: (
                "inference_complete",
                "POST",
                COMPLETE,
                {
                    "prompt_id": pid,
                    "version": v,
                    "user_input": "2 + 3",
                    "temperature": t,
                    "max_tokens": m,
                    "response_schema": {
                        "type": "object",
                        "properties": {"answer": {"type": "number", "minimum": s}},
                    },
                },
            ),
            _NUMBERS,
            _NUMBERS,
            _NUMBERS,
            _JSON,
        ),
    )


@pytest.fixture
def stored_prompt(api: Api, tenant: str) -> str:
    r = api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json=PROMPT)
    assert r.status_code == 201
    pid: str = r.get_json()["prompt_id"]
    return pid


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_numbers_and_nested_values_never_cause_a_5xx(
    api: Api, tenant: str, stored_prompt: str, data: st.DataObject
) -> None:
    function, method, path, body = data.draw(_bodies(stored_prompt))
    raw = json.dumps(body, allow_nan=True)
    r = api.call(
        function, method, path, tenant=tenant, role="admin", data=raw, content_type="application/json"
    )
    assert r.status_code < 500, (function, raw[:300], r.get_data(as_text=True))
    if r.status_code >= 400:
        assert r.content_type == "application/problem+json"


# 4. Strictness ------------------------------------------------------------------------------


@pytest.fixture
def prompt_id(api: Api, tenant: str) -> str:
    r = api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json=PROMPT)
    pid: str = r.get_json()["prompt_id"]
    return pid


@pytest.mark.parametrize("version", ["1", 1.0, True, [1]])
def test_label_versions_are_not_coerced(api: Api, tenant: str, prompt_id: str, version: Any) -> None:
    path = f"/api/v1/prompts/{prompt_id}/labels/prod"
    r = api.call("prompts_label_set", "PUT", path, tenant=tenant, json={"version": version})
    assert _problem(r)["code"] == "validation_failed"
    assert api.call("prompts_label_set", "PUT", path, tenant=tenant, json={"version": 1}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {
            "predictions": ["1"],
            "references": ["1"],
            "metrics": [{"name": "exact_match"}],
            "include_rows": "false",
        }
    ],
)
def test_body_booleans_are_not_coerced(api: Api, tenant: str, body: dict[str, Any]) -> None:
    r = api.call("evaluation_score", "POST", EVALUATE, tenant=tenant, json=body)
    assert _problem(r)["code"] == "validation_failed"


def test_queries_still_read_numbers_from_strings(api: Api, tenant: str, prompt_id: str) -> None:
    r = api.call(
        "prompts_get", "GET", f"/api/v1/prompts/{prompt_id}", tenant=tenant, query_string={"version": "1"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize("label", ["latest", "head", "current", "v2"])
def test_reserved_label_names_are_refused(api: Api, tenant: str, prompt_id: str, label: str) -> None:
    path = f"/api/v1/prompts/{prompt_id}/labels/{label}"
    out = _problem(api.call("prompts_label_set", "PUT", path, tenant=tenant, json={"version": 1}))
    assert out["code"] == "reserved_label"


def test_duplicate_json_keys_are_refused(api: Api, tenant: str) -> None:
    raw = '{"output_prompt": "{input}", "name": "a", "name": "b"}'
    r = api.call(
        "prompts_create", "POST", "/api/v1/prompts", tenant=tenant, data=raw, content_type="application/json"
    )
    assert _problem(r)["code"] == "duplicate_key"
    nested = '{"output_prompt": "{input}", "metadata": {"k": 1, "k": 2}}'
    r = api.call(
        "prompts_create",
        "POST",
        "/api/v1/prompts",
        tenant=tenant,
        data=nested,
        content_type="application/json",
    )
    assert _problem(r)["code"] == "duplicate_key"


@pytest.mark.parametrize(
    ("metric", "param"),
    [
        ({"name": "exact_match", "params": {"ignore_case": True}}, "ignore_case"),
        ({"name": "regex", "params": {"pattern": "a", "flags": "i"}}, "flags"),
        ({"name": "numeric", "params": {"tolerence": 1}}, "tolerence"),
    ],
)
def test_unknown_metric_params_are_named(api: Api, tenant: str, metric: dict[str, Any], param: str) -> None:
    out = _problem(_evaluate(api, tenant, metric))
    assert out["code"] == "validation_failed"
    assert f"does not take params {param}" in out["errors"][0]["msg"]


# 5. Page tokens ------------------------------------------------------------------------------


def test_forged_and_cross_tenant_page_tokens_are_400(api: Api, tenant: str) -> None:
    import base64

    for _ in range(2):
        api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json=PROMPT)
    first = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"page_size": 1})
    token = first.get_json()["next_page_token"]
    ok = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"page_token": token})
    assert ok.status_code == 200
    payload, mac = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["c"] = ["2099-01-01T00:00:00+00:00", "pr_zzzz"]
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    for bad in (f"{forged}.{mac}", forged, payload, f"{payload}.{mac[:-2]}AA"):
        r = api.call(
            "prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"page_token": bad}
        )
        assert _problem(r)["code"] == "invalid_page_token"
    other = "t-other-" + tenant
    r = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=other, query_string={"page_token": token})
    assert _problem(r)["code"] == "invalid_page_token"


# 6. No echo ----------------------------------------------------------------------------------

DISTINCT = "".join(f"Z{i:03d}q" for i in range(80))  # 400 characters, no window repeats


def _assert_not_echoed(r: Any) -> None:
    text = r.get_data(as_text=True)
    width = 41
    for start in range(len(DISTINCT) - width + 1):
        assert DISTINCT[start : start + width] not in text, (r.status_code, text[:500])


def test_problem_details_never_echo_caller_text(api: Api, tenant: str, prompt_id: str) -> None:
    v = DISTINCT
    calls = [
        ("prompts_create", "POST", "/api/v1/prompts", {"output_prompt": "{input}", v: 1}, {}),
        ("prompts_create", "POST", "/api/v1/prompts", {"output_prompt": "{" + v + "}"}, {}),
        ("prompts_create", "POST", "/api/v1/prompts", {"output_prompt": "{" + v + " and more words}"}, {}),
        ("prompts_create", "POST", "/api/v1/prompts", {"output_prompt": "{input}", "metadata": {v: 1}}, {}),
        ("prompts_create", "POST", "/api/v1/prompts", {"output_prompt": "{input}", "name": v * 2}, {}),
        ("prompts_get", "GET", f"/api/v1/prompts/{v}", None, {}),
        ("prompts_label_set", "PUT", f"/api/v1/prompts/{prompt_id}/labels/{v}", {"version": 1}, {}),
        ("prompts_label_set", "PUT", f"/api/v1/prompts/{v}/labels/prod", {"version": 1}, {}),
        ("prompts_update", "PUT", f"/api/v1/prompts/{prompt_id}", {"name": "x"}, {"If-Match": v}),
        (
            "evaluation_score",
            "POST",
            EVALUATE,
            {"predictions": ["a"], "references": ["a"], "metrics": [{"name": v}]},
            {},
        ),
        (
            "evaluation_score",
            "POST",
            EVALUATE,
            {
                "predictions": ["a"],
                "references": ["a"],
                "metrics": [{"name": "regex", "params": {"pattern": v + "(?=x)"}}],
            },
            {},
        ),
        (
            "evaluation_score",
            "POST",
            EVALUATE,
            {
                "predictions": ["a"],
                "references": ["a"],
                "metrics": [{"name": "exact_match", "params": {v: 1}}],
            },
            {},
        ),
        (
            "evaluation_score",
            "POST",
            EVALUATE,
            {
                "predictions": ["a"],
                "references": ["a"],
                "metrics": [{"name": "json_schema", "params": {"schema": {"properties": {v: {"type": 5}}}}}],
            },
            {},
        ),
        (
            "inference_complete",
            "POST",
            COMPLETE,
            {"output_prompt": "{input}", "response_schema": {"properties": {v: {"type": 5}}}},
            {},
        ),
        ("inference_complete", "POST", COMPLETE, {"output_prompt": "{input}", "variables": {v: "x"}}, {}),
    ]
    for function, method, path, body, headers in calls:
        r = api.call(function, method, path, tenant=tenant, json=body, headers=headers)
        assert 400 <= r.status_code < 500, (function, r.get_data(as_text=True))
        _assert_not_echoed(r)
    r = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"label": v})
    _assert_not_echoed(r)
    r = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={v: "1"})
    _assert_not_echoed(r)
