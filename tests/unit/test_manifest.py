"""The manifest and the code agree: every entry loads through functions-framework."""

from __future__ import annotations

import ast

import pytest

from promptopt.manifest import load_function_spec, load_manifest
from tests.support import ROOT, load_app

SPECS = load_manifest()


def test_every_function_folder_has_a_manifest() -> None:
    folders = {p.name for p in (ROOT / "functions").iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders == {s.name for s in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_entry_point_loads_through_functions_framework(spec) -> None:  # type: ignore[no-untyped-def]
    app = load_app(spec.name)
    assert app is not None
    tree = ast.parse((ROOT / "functions" / spec.name / "main.py").read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert spec.entry_point in names


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_models_named_by_the_manifest_exist(spec) -> None:  # type: ignore[no-untyped-def]
    import importlib

    if not spec.is_http:
        return
    for dotted in (spec.http.request_model, spec.http.query_model, spec.http.response_model):
        if dotted:
            module, _, name = dotted.rpartition(".")
            assert hasattr(importlib.import_module(module), name), dotted


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_endpoints_declare_roles_and_dependencies(spec) -> None:  # type: ignore[no-untyped-def]
    assert "functions-framework" in spec.dependencies
    if spec.auth.mode == "user":
        assert spec.auth.min_role is not None
    for grant in spec.roles:
        assert grant.role not in {"roles/owner", "roles/editor", "roles/viewer"}
        assert grant.why


def test_routes_are_unique_and_the_name_matches_the_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "wrong_name"
    bad.mkdir()
    (bad / "function.yaml").write_text((ROOT / "functions/health/function.yaml").read_text())
    with pytest.raises(ValueError, match="does not match"):
        load_function_spec(bad)


def test_path_regex_captures_parameters() -> None:
    spec = next(s for s in SPECS if s.name == "prompts_label_set")
    match = spec.http.path_regex.match("/api/v1/prompts/pr_1/labels/production")
    assert match is not None
    assert match.groupdict() == {"prompt_id": "pr_1", "label": "production"}
    assert spec.http.path_regex.match("/api/v1/prompts/pr_1/labels/a/b") is None


@pytest.mark.parametrize(
    ("trigger", "auth", "message"),
    [
        (
            {"type": "http", "method": "GET", "path": "/api/v1/x", "summary": "x"},
            {"mode": "internal"},
            "internal",
        ),
        ({"type": "pubsub", "topic": "t"}, {"mode": "user", "min_role": "admin"}, "internal"),
        (
            {"type": "http", "method": "GET", "path": "/api/v1/x", "summary": "x"},
            {"mode": "user"},
            "min_role",
        ),
        (
            {"type": "http", "method": "GET", "path": "/api/v1/x/", "summary": "x"},
            {"mode": "public"},
            "slash",
        ),
    ],
)
def test_manifest_refuses_auth_that_cannot_work(trigger: dict, auth: dict, message: str) -> None:  # type: ignore[type-arg]
    from pydantic import ValidationError

    from promptopt.manifest import FunctionSpec

    with pytest.raises(ValidationError, match=message):
        FunctionSpec.model_validate(
            {"name": "x_fn", "description": "x", "trigger": trigger, "auth": auth, "dependencies": []}
        )


# POSTs that write but must not replay: a replayed answer is stored, and these answers are secrets.
NO_REPLAY = {
    "api_keys_create": "the answer holds the new key's secret, which is never stored",
    "auth_token": "the answer is a bearer token; a retry simply exchanges again",
    "evaluation_score": "a computation that writes only usage counters; its answer (the scores of up to "
    "5,000 rows) may not fit a stored response",
}


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_posts_that_write_honour_idempotency_keys(spec) -> None:  # type: ignore[no-untyped-def]
    """A POST that can write (it holds a Firestore role) must declare Idempotency-Key."""
    if not spec.is_http or spec.http.method != "POST" or spec.name in NO_REPLAY:
        assert "Idempotency-Key" not in (spec.http.headers if spec.is_http else [])
        return
    writes = any(grant.role == "roles/datastore.user" for grant in spec.roles)
    if writes:
        assert "Idempotency-Key" in spec.http.headers


def test_dataset_create_body_cap_fits_inline_content() -> None:
    from promptopt.datasets.models import MAX_CREATE_BODY_BYTES
    from promptopt.manifest import load_manifest

    caps = {
        s.name: s.http.max_body_bytes for s in load_manifest() if s.name.startswith("datasets_") and s.is_http
    }
    assert caps["datasets_create"] == caps["datasets_version_create"] == MAX_CREATE_BODY_BYTES


def test_a_literal_segment_may_sit_beside_a_parameter() -> None:
    """POST /experiments/estimate and /experiments/{experiment_id} are distinct routes, in the spec too."""
    from promptopt.tooling import openapi

    routes = {(s.http.method, s.http.path): s.name for s in SPECS if s.is_http}
    assert routes[("POST", "/api/v1/experiments/estimate")] == "experiments_estimate"
    assert routes[("GET", "/api/v1/experiments/{experiment_id}")] == "experiments_get"
    paths = openapi.build_spec()["paths"]
    assert list(paths["/api/v1/experiments/estimate"]) == ["post"]
    assert list(paths["/api/v1/experiments/{experiment_id}"]) == ["get", "patch", "delete"]
