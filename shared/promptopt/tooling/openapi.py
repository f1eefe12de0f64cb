"""The OpenAPI (Swagger 2.0) document API Gateway serves, generated from the manifest and the models.

Google API Gateway accepts Swagger 2.0 only, so the pydantic (JSON Schema 2020-12) schemas are
converted down. The document keeps `${...}` placeholders that Terraform's `templatefile()` fills:
`backends` (a map of function name to URL), `jwt_issuer`, `jwt_jwks_uri` and `jwt_audiences`. The
local gateway fills them with `render_spec`. Any other `${` or `%{` in the document is escaped the
way templatefile wants (`$${`, `%%{`).

    python -m promptopt.tooling.openapi --write   # regenerate terraform/api/openapi.yaml
    python -m promptopt.tooling.openapi --check   # exit 1 when the checked-in file is stale
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from promptopt.http.answer_models import Problem
from promptopt.manifest import FunctionSpec, HttpTrigger, load_manifest, repo_root
from promptopt.tooling.swagger_schema import REF_PREFIX as _REF_PREFIX
from promptopt.tooling.swagger_schema import convert_schema

log = logging.getLogger("promptopt.tooling.openapi")

SPEC_PATH = Path("terraform/api/openapi.yaml")
SECURITY_NAME = "promptopt_jwt"
# The second issuer: tokens the platform signs in exchange for an API key (POST /auth/token).
API_TOKEN_SECURITY_NAME = "promptopt_api_token"  # noqa: S105 - a scheme name
TEMPLATE_VARIABLES = (
    "backends", "jwt_issuer", "jwt_jwks_uri", "jwt_audiences",
    "api_token_issuer", "api_token_jwks_uri", "api_token_audiences",
)  # fmt: skip
API_PREFIX = "/api/v1/"
_METHOD_ORDER = ("get", "post", "put", "patch", "delete")

# Keys a non-body Swagger 2.0 Parameter Object may carry beside name/in/required/description.
_PARAM_KEYS = (
    "type", "format", "items", "collectionFormat", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "enum", "multipleOf",
)  # fmt: skip
_PRIMITIVES = frozenset({"string", "integer", "number", "boolean"})

_HEADER_DOCS = {
    "Idempotency-Key": "Makes a retried POST safe: the first response under this key is replayed "
    "(with Idempotent-Replayed: true); a different body under the same key is refused with 422.",
    "If-Match": "The ETag of the version this change is based on; required (428 without it, "
    "412 when it is not the latest).",
}
_STATUS_TEXT = {
    400: "The request is malformed or fails validation",
    401: "No valid bearer token (or, for the token exchange, no valid API key)",
    402: "The work would pass the tenant's monthly spending cap",
    403: "The token's role or tenant does not allow this operation",
    404: "The resource does not exist in the caller's tenant",
    409: "A request with this Idempotency-Key is still in flight",
    412: "If-Match does not name the latest version",
    413: "The body is too large",
    415: "The body is not application/json",
    422: "The Idempotency-Key was already used with a different request",
    428: "An If-Match header is required",
    429: "Too many requests: a rate limit or an active-work cap; see Retry-After",
    500: "Unexpected error (logged)",
    503: "A backing service is busy; retry shortly",
}

_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": "requests allowed in the window of this operation's per-tenant limit",
    "RateLimit-Remaining": "requests left in the current window",
    "RateLimit-Reset": "seconds until the window has room again (an upper bound)",
    "RateLimit-Policy": "the limit and its window, e.g. 120;w=60",
}

_TEMPLATE_RE = re.compile(r"\$\$\{|%%\{|\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


class Placeholder(str):
    """A deliberate `${...}` template reference; the escaping pass leaves it alone."""

    __slots__ = ()


def _placeholder(name: str) -> Placeholder:
    return Placeholder("${" + name + "}")


# --- models ------------------------------------------------------------------------------------


def import_model(dotted: str) -> type[BaseModel]:
    """The pydantic model named by a dotted path such as `promptopt.prompts.models.PromptCreate`."""
    module_name, _, attr = dotted.rpartition(".")
    model = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{dotted} is not a pydantic model")
    return model


def _model_uses(functions: Iterable[FunctionSpec]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    uses: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Problem, "serialization"): None}
    for fn in functions:
        trigger = fn.http
        for dotted, mode in (
            (trigger.request_model, "validation"),
            (trigger.query_model, "validation"),
            (trigger.response_model, "serialization"),
        ):
            if dotted:
                uses[(import_model(dotted), mode)] = None  # type: ignore[index]
    return list(uses)


class _Schemas:
    """Every model's schema generated in one pass, so definition names are unique and shared."""

    def __init__(self, uses: list[tuple[type[BaseModel], JsonSchemaMode]]) -> None:
        refs, top = models_json_schema(uses, ref_template=_REF_PREFIX + "{model}")
        self.refs = refs
        raw_defs: dict[str, Any] = top.get("$defs", {})
        self.definitions = {name: convert_schema(raw_defs[name], raw_defs) for name in sorted(raw_defs)}
        self.raw_defs = raw_defs

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        """`{"$ref": "#/definitions/<Name>"}` for the model."""
        return dict(self.refs[(model, mode)])

    def raw(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        """The model's JSON Schema (2020-12) as pydantic produced it."""
        name = str(self.refs[(model, mode)]["$ref"]).removeprefix(_REF_PREFIX)
        return dict(self.raw_defs[name])

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow a `$ref` (for enums used as query parameters)."""
        while "$ref" in schema:
            target = self.raw_defs[str(schema["$ref"]).removeprefix(_REF_PREFIX)]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema


# --- operations --------------------------------------------------------------------------------


def _query_parameters(schemas: _Schemas, model: type[BaseModel]) -> list[dict[str, Any]]:
    raw = schemas.raw(model, "validation")
    required = set(raw.get("required", []))
    params = []
    for name, prop in raw.get("properties", {}).items():
        converted = convert_schema(schemas.resolve(prop), schemas.raw_defs)
        if "allOf" in converted and len(converted["allOf"]) == 1:  # a nullable or annotated $ref
            converted = {**converted["allOf"][0], **{k: v for k, v in converted.items() if k != "allOf"}}
        if "$ref" in converted:  # an enum class: parameters cannot refer to definitions
            target = convert_schema(schemas.resolve({"$ref": converted.pop("$ref")}), schemas.raw_defs)
            converted = {**target, **converted}
        kind = converted.get("type")
        if kind == "array" and converted.get("items", {}).get("type") in _PRIMITIVES:
            converted["collectionFormat"] = "multi"
        elif kind not in _PRIMITIVES:
            raise ValueError(f"{model.__name__}.{name}: a query parameter must be a primitive or a list")
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in converted:
            param["description"] = converted["description"]
        param.update({k: converted[k] for k in _PARAM_KEYS if k in converted})
        params.append(param)
    return params


def _parameters(trigger: HttpTrigger, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "type": "string"} for name in trigger.path_params
    ]
    if trigger.query_model:
        params += _query_parameters(schemas, import_model(trigger.query_model))
    for header in trigger.headers:
        param = {"name": header, "in": "header", "required": False, "type": "string"}
        if header in _HEADER_DOCS:
            param["description"] = _HEADER_DOCS[header]
        params.append(param)
    if trigger.request_model:
        model = import_model(trigger.request_model)
        params.append(
            {"name": "body", "in": "body", "required": True, "schema": schemas.ref(model, "validation")}
        )
    return params


def _error_statuses(fn: FunctionSpec) -> list[int]:
    trigger = fn.http
    statuses = {400, 500, 503, *trigger.errors}
    if fn.auth.mode == "user":
        statuses |= {401, 403}
    if trigger.path_params:
        statuses.add(404)
    if trigger.request_model:
        statuses |= {413, 415}
    if trigger.method == "POST" and "Idempotency-Key" in trigger.headers:
        statuses |= {409, 422}
    return sorted(statuses)


def _success_response(trigger: HttpTrigger, schemas: _Schemas) -> dict[str, Any]:
    response: dict[str, Any] = {"description": trigger.summary}
    headers: dict[str, Any] = {}
    if trigger.response_model:
        model = import_model(trigger.response_model)
        response["schema"] = schemas.ref(model, "serialization")
        # A versioned resource carries its ETag, which later updates send back as If-Match.
        if schemas.raw(model, "serialization").get("properties", {}).get("version", {}).get("type") == (
            "integer"
        ):
            headers["ETag"] = {"type": "string", "description": 'strong ETag of the version, e.g. "v3"'}
    if trigger.success_status == 201:
        headers["Location"] = {"type": "string", "description": "path of the created resource"}
    if trigger.rate_limit:
        for name, text in _RATE_LIMIT_HEADERS.items():
            headers[name] = {
                "type": "string" if name == "RateLimit-Policy" else "integer",
                "description": text,
            }
    if headers:
        response["headers"] = headers
    return response


def _operation(fn: FunctionSpec, schemas: _Schemas) -> dict[str, Any]:
    trigger = fn.http
    tag = trigger.path.removeprefix(API_PREFIX).lstrip("/").split("/", 1)[0]
    responses: dict[str, Any] = {str(trigger.success_status): _success_response(trigger, schemas)}
    if trigger.method == "GET":  # conditional reads: the ETag sent back in If-None-Match
        responses["304"] = {"description": "Not modified: If-None-Match names the current ETag"}
    for status in _error_statuses(fn):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "schema": {"$ref": _REF_PREFIX + "Problem"},
        }
    operation: dict[str, Any] = {
        "operationId": fn.name,
        "summary": trigger.summary,
        "description": fn.description,
        "tags": [tag],
        # Either issuer will do (alternatives): a person's ID token, or a token exchanged for a key.
        "security": [{SECURITY_NAME: []}, {API_TOKEN_SECURITY_NAME: []}] if fn.auth.mode == "user" else [],
    }
    if trigger.request_model:
        operation["consumes"] = ["application/json"]
    operation["produces"] = (
        ["text/html", "text/javascript", "text/css", "application/problem+json"]
        if not trigger.path.startswith(API_PREFIX)  # the dashboard's pages and assets
        else ["application/json", "application/problem+json"]
    )
    params = _parameters(trigger, schemas)
    if params:
        operation["parameters"] = params
    operation["responses"] = responses
    operation["x-google-backend"] = {
        "address": _placeholder(f"backends.{fn.name}"),
        "path_translation": "APPEND_PATH_TO_ADDRESS",
        "jwt_audience": _placeholder(f"backends.{fn.name}"),
        "deadline": float(fn.resources.timeout_s),
    }
    return operation


def _refs(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"].removeprefix(_REF_PREFIX)
        for sub in value.values():
            yield from _refs(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _refs(sub)


def _reachable(definitions: dict[str, Any], roots: Any) -> dict[str, Any]:
    """Only the definitions the operations use (query models become parameters, not schemas)."""
    seen: set[str] = set()
    pending = list(_refs(roots))
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_refs(definitions[name]))
    return {name: schema for name, schema in definitions.items() if name in seen}


def _version() -> str:
    try:
        return metadata.version("promptopt")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _escape(value: Any) -> Any:
    """Escape templatefile syntax in every string except deliberate placeholders."""
    if isinstance(value, Placeholder):
        return str(value)
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, dict):
        return {_escape(k): _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def build_spec(root: Path | None = None) -> dict[str, Any]:
    """The Swagger 2.0 document for every HTTP function in the manifest (placeholders unrendered)."""
    functions = [fn for fn in load_manifest(root) if fn.is_http]
    schemas = _Schemas(_model_uses(functions))
    paths: dict[str, dict[str, Any]] = {}
    for fn in functions:
        paths.setdefault(fn.http.path, {})[fn.http.method.lower()] = _operation(fn, schemas)
    ordered_paths = {
        path: {m: paths[path][m] for m in _METHOD_ORDER if m in paths[path]} for path in sorted(paths)
    }
    tags = sorted({tag for ops in paths.values() for op in ops.values() for tag in op["tags"]})
    spec: dict[str, Any] = {
        "swagger": "2.0",
        "info": {
            "title": "promptopt API",
            "description": "Prompt versioning, evaluation and optimization. Generated from "
            "functions/*/function.yaml by `scripts/gen-openapi`; do not edit by hand.",
            "version": _version(),
        },
        # No `host`: API Gateway serves the config on its own hostname, known only after the
        # gateway exists (naming it here would make the config depend on the gateway).
        "schemes": ["https"],
        "basePath": "/",
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "tags": [{"name": tag} for tag in tags],
        "securityDefinitions": {
            SECURITY_NAME: {
                "type": "oauth2",
                "flow": "implicit",
                "authorizationUrl": "",
                "x-google-issuer": _placeholder("jwt_issuer"),
                "x-google-jwks_uri": _placeholder("jwt_jwks_uri"),
                "x-google-audiences": _placeholder("jwt_audiences"),
                # Only the Authorization header (ESPv2 also reads ?access_token= unless told not to,
                # which would put tokens in URLs and logs; the local gateway reads the header only).
                "x-google-jwt-locations": [{"header": "Authorization", "value_prefix": "Bearer "}],
            },
            API_TOKEN_SECURITY_NAME: {
                "type": "oauth2",
                "flow": "implicit",
                "authorizationUrl": "",
                # The token-signing service account: Google holds its keys and publishes them.
                "x-google-issuer": _placeholder("api_token_issuer"),
                "x-google-jwks_uri": _placeholder("api_token_jwks_uri"),
                "x-google-audiences": _placeholder("api_token_audiences"),
                "x-google-jwt-locations": [{"header": "Authorization", "value_prefix": "Bearer "}],
            },
        },
        "paths": ordered_paths,
        "definitions": _reachable(schemas.definitions, ordered_paths),
    }
    escaped: dict[str, Any] = _escape(spec)
    return escaped


# --- rendering and output ----------------------------------------------------------------------


def _lookup(values: Mapping[str, Any], name: str) -> str:
    current: Any = values
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            raise KeyError(f"no value for template variable {name!r}")
        current = current[part]
    if isinstance(current, list | tuple):
        return ",".join(str(v) for v in current)
    return str(current)


def render_string(text: str, values: Mapping[str, Any]) -> str:
    """Fill `${name}` / `${map.key}` references and undo `$${` / `%%{` escapes, as templatefile does."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "$${":
            return "${"
        if found == "%%{":
            return "%{"
        return _lookup(values, match.group(1))

    return _TEMPLATE_RE.sub(replace, text)


def render_spec(spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `spec` with every placeholder filled from `values` (a list is joined with commas).

    `values` holds the Terraform variables: `backends` (function name -> URL), `jwt_issuer`,
    `jwt_jwks_uri`, `jwt_audiences`. A missing value raises KeyError.
    """

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return render_string(value, values)
        if isinstance(value, Mapping):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    rendered: dict[str, Any] = walk(spec)
    return rendered


class _Dumper(yaml.SafeDumper):
    """Block-style YAML; strings holding a placeholder are double-quoted so any value fits."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if "${" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_spec(spec: Mapping[str, Any]) -> str:
    """Deterministic YAML for the document."""
    header = "# Generated by scripts/gen-openapi from functions/*/function.yaml; do not edit.\n"
    body = yaml.dump(
        dict(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )
    return header + body


def validate_spec(spec: Mapping[str, Any]) -> None:
    """Raise if the document is not valid Swagger 2.0 (placeholders rendered with sample values)."""
    from openapi_spec_validator import OpenAPIV2SpecValidator, validate

    sample = render_spec(spec, sample_values(spec))
    # API Gateway's `{name=**}` (the rest of the path) is an extension the validator does not know:
    # it is checked here as the plain parameter `{name}` it declares.
    sample["paths"] = {re.sub(r"=\*\*\}", "}", path): ops for path, ops in sample.get("paths", {}).items()}
    # Google documents `authorizationUrl: ""` for JWT security definitions (the gateway ignores
    # it), while the Swagger 2.0 meta-schema wants a URI there: validate the rest, not that quirk.
    for scheme in sample.get("securityDefinitions", {}).values():
        if scheme.get("authorizationUrl") == "":
            scheme["authorizationUrl"] = "https://example.invalid/authorize"
    validate(sample, cls=OpenAPIV2SpecValidator)


def sample_values(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Plausible values for every template variable (for validation and tests)."""
    names = [op["operationId"] for ops in spec.get("paths", {}).values() for op in ops.values()]
    return {
        "backends": {name: f"https://{name.replace('_', '-')}-example.a.run.app" for name in names},
        "jwt_issuer": "https://issuer.example.com",
        "jwt_jwks_uri": "https://issuer.example.com/.well-known/jwks.json",
        "jwt_audiences": "promptopt",
        "api_token_issuer": "dev-api-tokens@example-project.iam.gserviceaccount.com",
        "api_token_jwks_uri": "https://www.googleapis.com/service_accounts/v1/metadata/jwk/"
        "dev-api-tokens@example-project.iam.gserviceaccount.com",
        "api_token_audiences": "promptopt-dev-api",
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: `--write` regenerates the checked-in document, `--check` verifies it is current."""
    parser = argparse.ArgumentParser(
        prog="python -m promptopt.tooling.openapi", description=(__doc__ or "").split("\n")[0]
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write terraform/api/openapi.yaml")
    action.add_argument("--check", action="store_true", help="exit 1 if the checked-in file is stale")
    action.add_argument("--stdout", action="store_true", help="print the document")
    args = parser.parse_args(argv)

    root = repo_root()
    spec = build_spec(root)
    validate_spec(spec)
    text = dump_spec(spec)
    target = root / SPEC_PATH
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.write:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            sys.stderr.write(f"wrote {SPEC_PATH}\n")
        return 0
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        sys.stderr.write(f"{SPEC_PATH} is stale; run scripts/gen-openapi\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
