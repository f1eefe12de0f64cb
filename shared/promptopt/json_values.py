"""Free-form JSON values from callers (metadata, metric params, schemas): bounded before storage.

Firestore stores signed 64-bit integers and the API promises finite numbers, so every number a
caller sends must be an int within INT64 or a finite float, and nesting is bounded. The request
parser (promptopt.http.json_body) already refuses the rest for HTTP bodies; request models call
`check_json_value` too, so library callers get the same rules.
"""

from __future__ import annotations

import math
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Version numbers, counts and sizes stay far inside Firestore's signed 64-bit integers.
MAX_VERSION = 2**31 - 1
MAX_DEPTH = 32


def check_json_value(value: Any, *, what: str = "value", max_depth: int = MAX_DEPTH) -> None:
    """Raise ValueError unless `value` is JSON with int64 integers, finite floats and bounded depth."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"{what} nests deeper than {max_depth} levels")
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise ValueError(f"{what} holds an integer outside the signed 64-bit range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{what} holds a number that is not finite (NaN or Infinity)")
        elif isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise ValueError(f"{what} has a non-string key")
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        else:
            raise ValueError(f"{what} holds a {type(item).__name__}, which is not JSON")
