"""JSON Schemas that callers send: checked at the door, and validated without ever fetching anything.

Every place that accepts a user schema (metric params, `response_schema`, anything later) calls
`check_user_schema` from its request model, so a bad schema is a 400 before any work starts:

- it is a JSON object of bounded depth whose `$schema`, if any, names a known draft;
- every `$ref`, `$dynamicRef` and `$recursiveRef`, wherever it appears, is local (starts with `#`),
  and local JSON pointers and anchors resolve: a schema can never make us fetch a URL or read a
  file (SSRF, local file disclosure);
- it is valid against its draft's meta-schema (Draft 2020-12 when `$schema` is absent);
- its size with references expanded is bounded, so nested `anyOf`/`$ref` chains cannot make
  validation exponential;
- with `runs_here=True` (a schema we validate answers against, e.g. the json_schema metric) every
  `pattern` and `patternProperties` key is valid RE2 (promptopt.safe_regex), and
  `unevaluatedProperties` may not be combined with `patternProperties` (jsonschema matches those
  with Python's backtracking `re`).

`validator(schema)` is what scoring uses: the checks again (stored jobs predate any rule), then a
jsonschema validator whose `referencing.Registry` has no retrieval at all and whose regex keywords
run on RE2. `jsonschema` is imported on first use.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from promptopt import safe_regex

MAX_DEPTH = 32
MAX_EXPANDED_NODES = 20_000
REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
_ANCHOR_KEYS = ("$anchor", "$dynamicAnchor")
# Keywords whose values are instance data, not subschemas: a "pattern" inside them is just data.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples", "example"})
_NAME_CHARS = 40


class UserSchemaError(ValueError):
    """The schema is refused; the message names where, never quotes the caller's values."""


def _where(path: tuple[str, ...]) -> str:
    if not path:
        return "the schema root"
    parts = [p if len(p) <= _NAME_CHARS else p[:_NAME_CHARS] + "…" for p in path]
    return "/" + "/".join(parts)


def _walk(
    node: Any, path: tuple[str, ...] = (), depth: int = 0
) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    if depth > MAX_DEPTH:
        raise UserSchemaError(f"the schema nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, dict):
        yield node, path
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)), depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, str(index)), depth + 1)


def check_user_schema(schema: Any, *, runs_here: bool = False) -> None:
    """Raise UserSchemaError unless `schema` is safe to accept (see the module docstring)."""
    if not isinstance(schema, dict):
        raise UserSchemaError("a JSON Schema must be a JSON object")
    nodes = list(_walk(schema))
    anchors: set[str] = set()
    for node, _path in nodes:
        anchors.update(v for k in _ANCHOR_KEYS if isinstance(v := node.get(k), str))
        if isinstance(node.get("$id"), str) and node["$id"].startswith("#"):
            anchors.add(node["$id"][1:])  # draft 6/7 plain-name fragments
    for node, path in nodes:
        for key in REF_KEYS:
            if key in node:
                _check_ref(schema, node[key], key, path, anchors)
        if "$schema" in node and _validator_class(node["$schema"]) is None:
            raise UserSchemaError(
                f"$schema at {_where(path)} must name a JSON Schema draft, e.g. "
                "https://json-schema.org/draft/2020-12/schema"
            )
    _check_meta(schema)
    _check_expanded_size(schema)
    if runs_here:
        _check_patterns(schema)


def _check_ref(root: dict[str, Any], ref: Any, key: str, path: tuple[str, ...], anchors: set[str]) -> None:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise UserSchemaError(
            f"{key} at {_where(path)} must be local to the schema (start with '#'); "
            "remote and file references are never fetched"
        )
    fragment = ref[1:]
    if fragment == "" or fragment.startswith("/"):
        if _nested_ids(root):
            return  # pointers resolve against the nearest $id; scoring still never fetches
        try:
            _pointer(root, fragment)
        except (KeyError, IndexError, ValueError, TypeError):
            raise UserSchemaError(f"{key} at {_where(path)} points at nothing in the schema") from None
    elif fragment not in anchors:
        raise UserSchemaError(f"{key} at {_where(path)} names an anchor the schema does not define")


def _nested_ids(root: dict[str, Any]) -> bool:
    return any(isinstance(node.get("$id"), str) and path for node, path in _walk(root))


def _pointer(root: Any, fragment: str) -> Any:
    from urllib.parse import unquote

    node = root
    for raw in unquote(fragment).split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


@functools.lru_cache(maxsize=16)
def _validator_class(dialect: Any) -> Any:
    if not isinstance(dialect, str):
        return None
    from jsonschema.validators import validator_for

    return validator_for({"$schema": dialect}, default=None)


def _default_class(schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator

    return _validator_class(schema.get("$schema")) or Draft202012Validator


def _check_meta(schema: dict[str, Any]) -> None:
    from jsonschema.exceptions import SchemaError, best_match

    cls = _default_class(schema)
    try:
        meta = cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)
        error = best_match(meta.iter_errors(schema))
    except RecursionError:
        raise UserSchemaError("the schema nests too deeply") from None
    except SchemaError:  # pragma: no cover - the bundled meta-schemas are valid
        raise
    if error is None:
        return
    where = _where(tuple(str(p) for p in error.absolute_path))
    expected = error.validator_value if isinstance(error.validator_value, str | bool | int) else None
    rule = f"{error.validator}" + (f" {expected}" if expected is not None else "")
    raise UserSchemaError(f"not a valid JSON Schema: {where} breaks the meta-schema rule '{rule}'")


def _check_expanded_size(schema: dict[str, Any]) -> None:
    """Count nodes with local pointers expanded (cycles count once); refuse past the bound."""
    if _nested_ids(schema):
        refs = sum(1 for node, _ in _walk(schema) for key in REF_KEYS if key in node)
        if refs > 64:
            raise UserSchemaError("a schema with nested $id may hold at most 64 references")
        return
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            return 1  # recursion: bounded by the instance's depth, not by the schema
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1 + sum(size(child) for child in children)
        if isinstance(node, dict):
            for ref_key in REF_KEYS:
                ref = node.get(ref_key)
                if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
                    total += size(_pointer(schema, ref[1:]))
        active.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise UserSchemaError(
                f"the schema is too large with its references expanded (over {MAX_EXPANDED_NODES} nodes)"
            )
        memo[key] = total
        return total

    size(schema)


def _schema_nodes(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Dicts in schema position (skips instance data under enum, const, default, examples)."""
    if isinstance(node, dict):
        yield node, path
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                yield from _schema_nodes(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schema_nodes(value, (*path, str(index)))


def _check_patterns(schema: dict[str, Any]) -> None:
    has_pattern_properties = has_unevaluated = False
    for node, path in _schema_nodes(schema):
        if isinstance(node.get("pattern"), str):
            _re2(node["pattern"], (*path, "pattern"))
        if isinstance(node.get("patternProperties"), dict):
            has_pattern_properties = True
            for pattern in node["patternProperties"]:
                _re2(pattern, (*path, "patternProperties"))
        has_unevaluated = has_unevaluated or "unevaluatedProperties" in node
    if has_pattern_properties and has_unevaluated:
        raise UserSchemaError("unevaluatedProperties cannot be combined with patternProperties here")


def _re2(pattern: str, path: tuple[str, ...]) -> None:
    try:
        safe_regex.check(pattern, what=f"the regex at {_where(path)}")
    except safe_regex.UnsafePatternError as exc:
        raise UserSchemaError(str(exc)) from None


def validator(schema: Any) -> Any:
    """A jsonschema validator for a checked user schema: no retrieval, regexes on RE2.

    Raises UserSchemaError when the schema does not pass `check_user_schema(runs_here=True)`.
    """
    check_user_schema(schema, runs_here=True)
    from referencing import Registry

    cls = _safe_class(_default_class(schema))
    # An empty Registry's retrieve raises NoSuchResource: any reference outside the schema (which
    # the check refuses anyway) fails as Unresolvable instead of being fetched.
    return cls(schema, registry=Registry())


@functools.lru_cache(maxsize=16)
def _safe_class(cls: Any) -> Any:
    from jsonschema import validators

    return validators.extend(
        cls,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not safe_regex.search(
        safe_regex.compile_pattern(pattern), instance
    ):
        yield ValidationError("the string does not match the schema's pattern")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        program = safe_regex.compile_pattern(pattern)
        for key, value in instance.items():
            if safe_regex.search(program, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    programs = [safe_regex.compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [
        key
        for key in instance
        if key not in properties and not any(safe_regex.search(p, key) for p in programs)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        yield ValidationError("additional properties are not allowed")


def schema_bytes(schema: Any) -> int:
    """The schema's size as compact JSON, in bytes."""
    return len(json.dumps(schema, separators=(",", ":")).encode())
