"""One nesting limit for JSON from outside, whoever parses it (request bodies, dataset rows).

Python's `json` recurses per nesting level, so a value nested 100,000 deep raises RecursionError
(or worse, exhausts the stack of a thread). Nothing this product stores needs more than a few
levels; anything deeper than MAX_DEPTH is refused before it is parsed. The check is linear and
costs nothing for ordinary text: only text with more than MAX_DEPTH brackets is scanned.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 200
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class TooDeep(ValueError):
    """The JSON text nests deeper than MAX_DEPTH."""


def depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar; strings do not count)."""
    level = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub("", text)):
        if match.group() in "[{":
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def check(text: str | bytes) -> None:
    """Raise TooDeep when `text` nests deeper than MAX_DEPTH."""
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
            return
        text = text.decode("utf-8", "replace")
    elif text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    if depth(text) > MAX_DEPTH:
        raise TooDeep(f"the JSON nests deeper than {MAX_DEPTH} levels")


def loads(text: str | bytes) -> Any:
    """`json.loads`, refusing (TooDeep) text nested deeper than MAX_DEPTH."""
    check(text)
    try:
        return json.loads(text)
    except RecursionError:  # unreachable under MAX_DEPTH; kept so no caller ever sees it
        raise TooDeep(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
