"""The generated Swagger 2.0 document: current, valid, complete, and safe for templatefile()."""

from __future__ import annotations

import enum
import re
import textwrap
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import yaml
from pydantic import BaseModel, Field

from promptopt.http.models import RequestModel
from promptopt.manifest import load_manifest, repo_root
from promptopt.tooling import openapi

ALLOWED_VARIABLES = {
    "jwt_issuer", "jwt_jwks_uri", "jwt_audiences",
    "api_token_issuer", "api_token_jwks_uri", "api_token_audiences",
}  # fmt: skip
# JSON Schema keywords Swagger 2.0 does not know; none may survive the conversion.
FORBIDDEN_KEYS = {
    "anyOf", "oneOf", "const", "$defs", "prefixItems", "examples", "unevaluatedProperties",
    "patternProperties", "propertyNames", "not", "contentMediaType", "dependentRequired",
}  # fmt: skip


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return openapi.build_spec()


def _walk_keys(value: Any, path: str = "") -> list[tuple[str, str, Any]]:
    found = []
    if isinstance(value, dict):
        for key, sub in value.items():
            found.append((path, key, sub))
            found += _walk_keys(sub, f"{path}/{key}")
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _walk_keys(sub, f"{path}/{i}")
    return found


def test_checked_in_document_is_current(spec: dict[str, Any]) -> None:
    path = repo_root() / openapi.SPEC_PATH
    assert path.is_file(), f"{openapi.SPEC_PATH} is missing; run scripts/gen-openapi"
    assert path.read_text(encoding="utf-8") == openapi.dump_spec(spec), (
        f"{openapi.SPEC_PATH} is stale (a function.yaml or a model changed); run scripts/gen-openapi"
    )


def test_document_is_valid_swagger_2(spec: dict[str, Any]) -> None:
    openapi.validate_spec(spec)
    assert spec["swagger"] == "2.0"
    assert spec["info"]["title"] == "promptopt API"


def test_every_http_function_has_exactly_one_operation(spec: dict[str, Any]) -> None:
    operations = {
        op["operationId"]: (method, path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    http = [fn for fn in load_manifest() if fn.is_http]
    assert sorted(operations) == sorted(fn.name for fn in http)
    for fn in http:
        method, path, op = operations[fn.name]
        assert (method, path) == (fn.http.method.lower(), fn.http.path)
        # A person's ID token or a token exchanged for an API key: either issuer admits a user route.
        expected_security: list[dict[str, list[str]]] = (
            [{openapi.SECURITY_NAME: []}, {openapi.API_TOKEN_SECURITY_NAME: []}]
            if fn.auth.mode == "user"
            else []
        )
        assert op["security"] == expected_security, fn.name
        parts = fn.http.path.split("/")
        assert op["tags"] == [parts[3] if parts[1] == "api" else parts[1]]  # /api/v1/<tag>, /dashboard
        backend = op["x-google-backend"]
        assert backend["address"] == backend["jwt_audience"] == f"${{backends.{fn.name}}}"
        assert backend["path_translation"] == "APPEND_PATH_TO_ADDRESS"
        assert backend["deadline"] == fn.resources.timeout_s
        assert str(fn.http.success_status) in op["responses"]
        path_params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        assert path_params == fn.http.path_params
        if fn.http.request_model:
            assert next(p for p in op["parameters"] if p["in"] == "body")["required"] is True
            assert {"413", "415"} <= set(op["responses"])
        for header in fn.http.headers:
            assert any(p["in"] == "header" and p["name"] == header for p in op["parameters"])


def test_internal_functions_are_not_routed(spec: dict[str, Any]) -> None:
    names = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    assert not names & {fn.name for fn in load_manifest() if not fn.is_http}


def test_only_terraform_variables_are_templated() -> None:
    text = (repo_root() / openapi.SPEC_PATH).read_text(encoding="utf-8")
    backends = {fn.name for fn in load_manifest() if fn.is_http}
    for match in re.finditer(r"(?<!\$)\$\{([^}]*)\}", text):
        name = match.group(1)
        assert name in ALLOWED_VARIABLES or (
            name.startswith("backends.") and name.removeprefix("backends.") in backends
        ), f"stray template reference ${{{name}}}"
    assert not re.search(r"(?<!%)%\{", text), "stray %{ (templatefile directive)"


def test_security_definition_is_google_jwt(spec: dict[str, Any]) -> None:
    scheme = spec["securityDefinitions"][openapi.SECURITY_NAME]
    assert scheme["type"] == "oauth2"
    assert scheme["flow"] == "implicit"
    assert scheme["authorizationUrl"] == ""
    assert scheme["x-google-issuer"] == "${jwt_issuer}"
    assert scheme["x-google-jwks_uri"] == "${jwt_jwks_uri}"
    assert scheme["x-google-audiences"] == "${jwt_audiences}"


def test_api_tokens_are_a_second_issuer(spec: dict[str, Any]) -> None:
    scheme = spec["securityDefinitions"][openapi.API_TOKEN_SECURITY_NAME]
    assert scheme["type"] == "oauth2"
    assert scheme["x-google-issuer"] == "${api_token_issuer}"
    assert scheme["x-google-jwks_uri"] == "${api_token_jwks_uri}"
    assert scheme["x-google-audiences"] == "${api_token_audiences}"
    assert scheme["x-google-jwt-locations"] == [{"header": "Authorization", "value_prefix": "Bearer "}]
    exchange = spec["paths"]["/api/v1/auth/token"]["post"]
    assert exchange["security"] == []  # the key in the body is the credential


def test_no_json_schema_only_keywords(spec: dict[str, Any]) -> None:
    for where, key, value in _walk_keys(spec["definitions"]):
        assert key not in FORBIDDEN_KEYS, f"{where}/{key}"
        if key == "type":
            assert value != "null", where
            assert not isinstance(value, list), where
        if key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(value, bool), where


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    for where, key, value in _walk_keys(spec):
        if key == "$ref":
            assert value.startswith("#/definitions/"), where
            assert value.removeprefix("#/definitions/") in spec["definitions"], where
    assert "Problem" in spec["definitions"]


def test_render_fills_every_placeholder(spec: dict[str, Any]) -> None:
    values = openapi.sample_values(spec)
    values["jwt_audiences"] = ["a", "b"]
    rendered = openapi.render_spec(spec, values)
    text = yaml.safe_dump(rendered)
    assert "${" not in text
    health = rendered["paths"]["/api/v1/health"]["get"]["x-google-backend"]
    assert health["address"] == values["backends"]["health"]
    assert rendered["securityDefinitions"][openapi.SECURITY_NAME]["x-google-audiences"] == "a,b"
    with pytest.raises(KeyError):
        openapi.render_spec(spec, {"backends": {}})


def test_yaml_is_deterministic(spec: dict[str, Any]) -> None:
    assert openapi.dump_spec(spec) == openapi.dump_spec(openapi.build_spec())
    assert list(spec["paths"]) == sorted(spec["paths"])
    assert yaml.safe_load(openapi.dump_spec(spec)) == spec


# --- conversion of awkward schemas, through a throwaway manifest ---------------------------------


class Colour(enum.StrEnum):
    red = "red"
    blue = "blue"


class Inner(BaseModel):
    n: int = Field(gt=0, lt=10)


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]


class WeirdBody(RequestModel):
    """A body with everything Swagger 2.0 lacks."""

    price: Annotated[str, Field(pattern=r"^\$\{?[0-9]+%\{$", examples=["${1%{"])]
    pair: tuple[int, str]
    inner: Inner | None = None
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    mixed: int | str
    version: Literal[2] = 2


class WeirdQuery(RequestModel):
    colour: Colour | None = None
    tags: list[str] | None = None
    limit: int = Field(10, ge=1, le=50, description="how many")


class WeirdReply(BaseModel):
    pet: Cat | Dog
    colours: list[Colour]


def _weird_spec(tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "functions" / "weird_thing"
    folder.mkdir(parents=True)
    (folder / "function.yaml").write_text(
        textwrap.dedent(
            f"""
            name: weird_thing
            description: 'a test-only endpoint costing ${{nothing}}'
            trigger:
              type: http
              method: POST
              path: /api/v1/weird/{{weird_id}}
              summary: Weird
              request_model: {__name__}.WeirdBody
              query_model: {__name__}.WeirdQuery
              response_model: {__name__}.WeirdReply
              headers: [Idempotency-Key]
              errors: [429]
            auth:
              mode: user
              min_role: viewer
            dependencies: [pydantic]
            """
        ),
        encoding="utf-8",
    )
    return openapi.build_spec(tmp_path)


def test_awkward_models_convert_to_valid_swagger(tmp_path: Path) -> None:
    spec = _weird_spec(tmp_path)
    openapi.validate_spec(spec)
    for where, key, _ in _walk_keys(spec):
        assert key not in FORBIDDEN_KEYS, f"{where}/{key}"
    body = spec["definitions"]["WeirdBody"]
    assert body["additionalProperties"] is False
    props = body["properties"]
    assert props["version"]["enum"] == [2]
    assert props["inner"] == {"allOf": [{"$ref": "#/definitions/Inner"}], "x-nullable": True}
    assert props["pair"]["type"] == "array"
    assert "prefixItems" not in props["pair"]
    assert props["pet"]["type"] == "object"
    assert "Cat" in props["pet"]["description"]
    assert "Dog" in props["pet"]["description"]
    assert "type" not in props["mixed"]
    inner = spec["definitions"]["Inner"]["properties"]["n"]
    assert inner["minimum"] == 0
    assert inner["exclusiveMinimum"] is True
    assert inner["maximum"] == 10
    assert inner["exclusiveMaximum"] is True
    op = spec["paths"]["/api/v1/weird/{weird_id}"]["post"]
    assert {"409", "422", "429", "401", "403", "404"} <= set(op["responses"])
    params = {p["name"]: p for p in op["parameters"]}
    assert params["colour"]["enum"] == ["red", "blue"]
    assert params["colour"]["type"] == "string"
    assert params["tags"]["type"] == "array"
    assert params["tags"]["collectionFormat"] == "multi"
    assert params["limit"]["maximum"] == 50
    assert params["limit"]["default"] == 10
    assert params["limit"]["description"] == "how many"


def test_template_syntax_in_models_is_escaped(tmp_path: Path) -> None:
    spec = _weird_spec(tmp_path)
    text = openapi.dump_spec(spec)
    assert not re.search(r"(?<!\$)\$\{(?!backends\.|jwt_|api_token_)", text)
    assert not re.search(r"(?<!%)%\{", text)
    rendered = openapi.render_spec(spec, openapi.sample_values(spec))
    price = rendered["definitions"]["WeirdBody"]["properties"]["price"]
    assert price["pattern"] == r"^\$\{?[0-9]+%\{$"
    assert price["example"] == "${1%{"
    assert rendered["paths"]["/api/v1/weird/{weird_id}"]["post"]["description"].endswith("${nothing}")


def test_query_model_must_be_flat(tmp_path: Path) -> None:
    class Nested(RequestModel):
        inner: Inner

    globals()["Nested"] = Nested
    try:
        folder = tmp_path / "functions" / "flat_only"
        folder.mkdir(parents=True)
        (folder / "function.yaml").write_text(
            "name: flat_only\ndescription: x\ntrigger: {type: http, method: GET, path: /api/v1/flat,"
            f" summary: x, query_model: {__name__}.Nested}}\nauth: {{mode: public}}\ndependencies: []\n",
            encoding="utf-8",
        )
        with pytest.raises(ValueError, match="primitive"):
            openapi.build_spec(tmp_path)
    finally:
        del globals()["Nested"]


def test_check_mode_reports_staleness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo_root()
    (tmp_path / "functions").symlink_to(root / "functions")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("PROMPTOPT_REPO_ROOT", str(tmp_path))
    assert openapi.main(["--check"]) == 1
    assert openapi.main(["--write"]) == 0
    assert openapi.main(["--check"]) == 0
    (tmp_path / openapi.SPEC_PATH).write_text("stale", encoding="utf-8")
    assert openapi.main(["--check"]) == 1
