"""Parse a request body as JSON the strict way the API promises.

Python's json module takes the last of duplicate keys, reads NaN and Infinity, overflows 1e400 to
infinity and builds integers of any size; each of these would be accepted silently or fail later
(Firestore holds signed 64-bit integers). Here they are 400s naming the rule, never the value.
"""

from __future__ import annotations

import json
import math
from typing import Any

from promptopt.errors import InvalidRequest
from promptopt.json_values import INT64_MAX, INT64_MIN


class _Refused(ValueError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Refused("the body repeats a key within one JSON object", "duplicate_key")
    return result


def _int(text: str) -> int:
    if len(text) > 20:  # no int64 has more digits (with its sign); spares parsing huge ones
        raise _Refused("the body holds an integer outside the signed 64-bit range", "number_out_of_range")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Refused("the body holds an integer outside the signed 64-bit range", "number_out_of_range")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("the body holds a number too large for a double", "number_out_of_range")
    return value


def _constant(text: str) -> Any:
    raise _Refused("NaN and Infinity are not JSON numbers", "number_out_of_range")


def loads(raw: bytes) -> Any:
    """The body's JSON value; raises InvalidRequest (400) for anything the API does not accept."""
    try:
        return json.loads(
            raw, object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
        )
    except _Refused as exc:
        raise InvalidRequest(str(exc), code=exc.code) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest("the body nests too deeply", code="invalid_json") from None
