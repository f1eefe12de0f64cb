"""Metric params are user input: no fetches, no backtracking regexes, no unknown params, no 500s."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptopt import safe_regex
from promptopt.evaluation import MetricError, score_rows
from promptopt.evaluation.params import check_metric_params
from promptopt.evaluation.row_metrics import json_valid
from promptopt.user_schemas import UserSchemaError, check_user_schema, validator


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = json.dumps({"type": "string"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server that records every request it receives (none must arrive)."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    finally:
        server.shutdown()
        server.server_close()


def _remote_schemas(url: str, secret_file: Path) -> list[dict[str, Any]]:
    file_url = secret_file.as_uri()
    return [
        {"$ref": f"{url}/x"},
        {"$ref": file_url},
        {"type": "object", "properties": {"a": {"items": {"anyOf": [{"$ref": f"{url}/deep"}]}}}},
        {"$defs": {"x": {"$ref": f"{url}/defs"}}, "$ref": "#/$defs/x"},
        {"$dynamicRef": f"{url}/dyn"},
        {"$schema": "http://json-schema.org/draft-07/schema#", "$ref": f"{url}/draft7"},
        {"$schema": "https://json-schema.org/draft/2019-09/schema", "$recursiveRef": f"{url}/rec"},
        {"$id": f"{url}/base/", "$ref": "other.json"},  # relative to a remote $id
        {"$schema": f"{url}/meta"},
    ]


def test_no_user_schema_fetches_or_reads_anything(
    schema_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, hits = schema_server
    secret_file = tmp_path / "secret.json"
    secret_file.write_text('{"type": "string", "const": "s3cr3t"}')
    for schema in _remote_schemas(url, secret_file):
        with pytest.raises(UserSchemaError):
            check_user_schema(schema)
        with pytest.raises(MetricError):
            check_metric_params("json_schema", {"schema": schema})
        with pytest.raises(MetricError):
            score_rows("json_schema", ['"s3cr3t"'], [""], {"schema": schema})
    assert hits == []


def test_the_scoring_validator_cannot_retrieve(schema_server: tuple[str, list[str]]) -> None:
    from referencing.exceptions import Unresolvable

    url, hits = schema_server
    # A local reference under a remote $id resolves inside the schema, never over the network.
    schema = {"$id": f"{url}/root", "properties": {"a": {"$ref": "#"}}}
    assert validator(schema).is_valid({"a": {"a": {}}})
    # Even a remote reference that slipped past the checks fails to resolve instead of fetching.
    safe = validator({"type": "object"})
    unchecked = safe.evolve(schema={"$ref": f"{url}/x"})
    with pytest.raises(Unresolvable):
        unchecked.is_valid("x")
    assert hits == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": 5},
        {"type": "object", "properties": ["a"]},
        {"type": "array", "items": 5},
        {"type": "object", "properties": {"a": {"type": "array", "items": 5}}},
        {"$ref": "#/$defs/missing"},
        {"$ref": "#nowhere"},
        {"type": "strin"},
        {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {}}}}}}}}}} | {"x": 1},
    ],
)
def test_malformed_schemas_are_refused(schema: dict[str, Any]) -> None:
    if "x" in schema:  # only depth matters here: nest past the bound
        node: dict[str, Any] = {}
        for _ in range(40):
            node = {"not": node}
        schema = node
    with pytest.raises(UserSchemaError):
        check_user_schema(schema)


def test_exponential_reference_chains_are_refused() -> None:
    defs: dict[str, Any] = {
        f"l{i}": {"anyOf": [{"$ref": f"#/$defs/l{i + 1}"}, {"$ref": f"#/$defs/l{i + 1}"}]} for i in range(30)
    }
    defs["l30"] = {"type": "string"}
    with pytest.raises(UserSchemaError, match="too large"):
        check_user_schema({"$defs": defs, "$ref": "#/$defs/l0"})
    # Recursion through the instance is fine: it is bounded by the instance, not the schema.
    tree = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}
    check_user_schema(tree)
    assert validator(tree).is_valid({"kids": [{"kids": []}]})


def test_schema_regexes_run_on_re2() -> None:
    evil = "^(a+)+$"
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": evil}},
        "patternProperties": {"^k(a+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    started = time.perf_counter()
    instance = {"s": "a" * 50_000 + "!", "k" + "a" * 50_000 + "!": 1}
    assert validator(schema).is_valid(instance) is False
    assert time.perf_counter() - started < 1.0
    with pytest.raises(UserSchemaError, match="RE2"):
        check_user_schema({"type": "string", "pattern": "(a)\\1"}, runs_here=True)
    with pytest.raises(UserSchemaError, match="unevaluatedProperties"):
        check_user_schema({"patternProperties": {"a": {}}, "unevaluatedProperties": False}, runs_here=True)
    # A schema only passed to a model (response_schema) may use the model's own regex dialect.
    check_user_schema({"type": "string", "pattern": "(?=a)"})


def test_regex_metric_is_linear_time() -> None:
    started = time.perf_counter()
    found = score_rows("regex", ["a" * 100_000 + "!"], [""], {"pattern": "^(a+)+$"})
    assert found.scores == [0.0]
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pattern": "(a)\\1"}, "RE2"),
        ({"pattern": "(?=a)b"}, "lookaround"),
        ({"pattern": "x" * (safe_regex.MAX_PATTERN_CHARS + 1)}, "longer than"),
        ({"pattern": "(a{1000}){1000}"}, "RE2"),
        ({"pattern": "a", "ignore_case": "yes"}, "ignore_case"),
        ({"pattern": "a", "flags": "i"}, "does not take params flags"),
    ],
)
def test_bad_regex_params_are_refused_before_scoring(params: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricError, match=message):
        check_metric_params("regex", params)
    with pytest.raises(MetricError):
        score_rows("regex", ["a"], ["a"], params)


def test_a_row_beyond_the_regex_limits_is_a_row_error() -> None:
    long_ref = "." * 30_000  # escaped (doubled) and substituted, the pattern passes its per-row cap
    found = score_rows(
        "regex",
        ["a", "a" * (safe_regex.MAX_SUBJECT_CHARS + 1), "a"],
        ["a", "a", long_ref],
        {"pattern": "{reference}"},
    )
    assert found.scores == [1.0, 0.0, 0.0]
    assert set(found.errors) == {1, 2}
    assert "longer than" in found.errors[1]


@pytest.mark.parametrize(
    ("metric", "params"),
    [
        ("exact_match", {"ignore_case": True}),
        ("numeric", {"tolerance": 1, "tol": 2}),
        ("json_schema", {"schema": {}, "strict": True}),
        ("llm_judge", {"judge": "sim:x"}),
    ],
)
def test_unknown_params_are_refused_by_name(metric: str, params: dict[str, Any]) -> None:
    unknown = next(k for k in params if k not in {"tolerance", "schema"})
    with pytest.raises(MetricError, match=f"does not take params {unknown}"):
        check_metric_params(metric, params)


@pytest.mark.parametrize("tolerance", [float("nan"), float("inf"), -1, 10**30, True, "1"])
def test_tolerance_must_be_a_finite_bounded_number(tolerance: object) -> None:
    with pytest.raises(MetricError):
        check_metric_params("numeric", {"tolerance": tolerance})


def test_json_nested_beyond_the_parser_is_just_invalid() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert json_valid(deep, "", {}) == 0.0
    assert score_rows("json_schema", [deep], [""], {"schema": {"type": "array"}}).scores == [0.0]
