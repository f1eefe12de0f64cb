"""The simulator's structured answers: a JSON value shaped by the request's response_schema.

Schemas come from callers, so any shape may arrive here (stored jobs predate the door's checks):
a shape this filler cannot follow raises SchemaFillError, which the simulator reports as a
rejected request (as a real provider answers 400), never as an unexpected exception.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32


class SchemaFillError(ValueError):
    """The schema has a shape no answer can be built from."""


def fill(schema: Any, answer: str, text: str) -> Any:
    """A value for `schema`: objects get each property, the answer goes where it fits."""
    return _fill_object_or_value("answer", schema, answer, text, 0)


def _as_schema(schema: Any, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise SchemaFillError(f"response_schema nests deeper than {MAX_DEPTH} levels")
    if schema is True:
        return {}
    if not isinstance(schema, dict):
        raise SchemaFillError("response_schema holds a subschema that is not an object")
    return schema


def _fill_object_or_value(name: str, schema: Any, answer: str, text: str, depth: int) -> Any:
    schema = _as_schema(schema, depth)
    if _kind(schema) == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise SchemaFillError("response_schema properties must be an object")
        if not props:
            return {"answer": answer}
        return {str(key): _fill_value(str(key), sub, answer, text, depth + 1) for key, sub in props.items()}
    return _fill_value(name, schema, answer, text, depth)


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is not None and not isinstance(kind, str):
        raise SchemaFillError("response_schema type must be a string or a list of strings")
    return kind


def _fill_value(name: str, schema: Any, answer: str, text: str, depth: int) -> Any:
    schema = _as_schema(schema, depth)
    enum = schema.get("enum")
    if enum is not None:
        if not isinstance(enum, list) or not enum:
            raise SchemaFillError("response_schema enum must be a non-empty array")
        return enum[0]
    kind = _kind(schema)
    if kind in ("number", "integer"):
        try:
            number = float(answer)
        except ValueError:
            number = 0.0
        if not math.isfinite(number):
            number = 0.0
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return True
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, list):  # draft 4 tuple form: the first item's schema
            items = items[0] if items else None
        if items is None or items is False or items == {}:
            return []
        return [_fill_value(name, items, answer, text, depth + 1)]
    if kind == "object":
        return _fill_object_or_value(name, schema, answer, text, depth)
    return answer if "answer" in name.lower() else text
