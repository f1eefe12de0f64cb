"""JSON Schema (draft 2020-12, as pydantic writes it) converted down to Swagger 2.0 Schema Objects.

Swagger 2.0 has no `anyOf`/`oneOf`, `const`, `null` type or numeric `exclusiveMinimum`: unions
with null become `x-nullable`, other unions keep their shared type and name the choices, and
keywords Swagger 2.0 lacks are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("promptopt.tooling.openapi")

REF_PREFIX = "#/definitions/"

# Keys a Swagger 2.0 Schema Object may carry (vendor extensions `x-` are always allowed).
_SCHEMA_KEYS = frozenset(
    {
        "$ref", "format", "title", "description", "default", "multipleOf", "maximum",
        "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
        "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties", "required", "enum",
        "type", "items", "allOf", "properties", "additionalProperties", "readOnly", "example",
    }
)  # fmt: skip


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def _merge_outer(inner: dict[str, Any], outer: Mapping[str, Any]) -> dict[str, Any]:
    """Attach the annotations of a union's wrapper (description, default) to its chosen branch."""
    merged = dict(inner)
    for key, value in outer.items():
        if key not in ("anyOf", "oneOf", "discriminator"):
            merged.setdefault(key, value)
    if "$ref" in merged and len(merged) > 1:
        ref = merged.pop("$ref")
        merged = {"allOf": [{"$ref": ref}], **merged}
    return merged


def _describe_union(branches: list[dict[str, Any]]) -> str:
    names = []
    for branch in branches:
        if "$ref" in branch:
            names.append(str(branch["$ref"]).removeprefix(REF_PREFIX))
        else:
            names.append(str(branch.get("type", "any")))
    return "one of: " + ", ".join(names)


def _branch_type(branch: dict[str, Any], defs: Mapping[str, Any]) -> str | None:
    if "$ref" in branch:
        target = defs.get(str(branch["$ref"]).removeprefix(REF_PREFIX), {})
        return target.get("type", "object" if "properties" in target else None)
    kind = branch.get("type")
    return kind if isinstance(kind, str) else None


def _convert_union(schema: dict[str, Any], key: str, defs: Mapping[str, Any]) -> dict[str, Any]:
    branches = [b for b in schema[key] if not _is_null(b)]
    nullable = len(branches) != len(schema[key])
    outer = {k: v for k, v in schema.items() if k not in (key, "discriminator")}
    if len(branches) == 1:
        result = _merge_outer(convert_schema(branches[0], defs), convert_schema(outer, defs) if outer else {})
    else:
        # Swagger 2.0 has no anyOf/oneOf: keep the type all branches share and name the choices.
        converted = [convert_schema(b, defs) for b in branches]
        types = {_branch_type(b, defs) for b in converted}
        result = convert_schema(outer, defs) if outer else {}
        if types <= {"integer", "number"}:
            result.setdefault("type", "number")
        elif len(types) == 1 and None not in types:
            result.setdefault("type", types.pop())
        note = _describe_union(converted)
        result["description"] = f"{result['description']} ({note})" if "description" in result else note
    if nullable:
        result["x-nullable"] = True
        if "$ref" in result:  # Swagger 2.0 ignores siblings of $ref
            result = {"allOf": [{"$ref": result.pop("$ref")}], **result}
    return result


def convert_schema(schema: Any, defs: Mapping[str, Any] | None = None) -> Any:
    """Convert one pydantic JSON Schema (draft 2020-12) node to a Swagger 2.0 Schema Object.

    `defs` (the raw `$defs`) lets a union of models keep their common type (`object`).
    """
    defs = defs or {}
    if isinstance(schema, list):
        return [convert_schema(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return _convert_union(schema, union, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-"):
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "examples" and isinstance(value, list) and value:
            out["example"] = value[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            if len(kinds) == 1:
                out["type"] = kinds[0]
            if len(kinds) != len(value):
                out["x-nullable"] = True
        elif key == "properties":
            out[key] = {name: convert_schema(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            if isinstance(value, dict | bool):
                out[key] = convert_schema(value, defs)
        elif key == "allOf":
            out[key] = convert_schema(value, defs)
        elif key == "default" and value is None:
            continue  # Swagger 2.0 has no null default; x-nullable says it
        elif key == "title":
            continue  # pydantic's generated titles ("Page Size") are noise next to the names
        elif key in _SCHEMA_KEYS:
            out[key] = value
        else:
            log.debug("dropping JSON Schema keyword %s (not in Swagger 2.0)", key)
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out
