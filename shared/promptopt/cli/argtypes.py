"""Argument types for the CLI's numeric options: a clear usage error instead of a 400 later."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(text)
    except ValueError:
        article = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {article}") from None


def _checked(kind: type[int] | type[float], ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(rule)
        return value

    return parse


positive_int: Callable[[str], int] = _checked(int, lambda v: v >= 1, "must be 1 or more")  # type: ignore[assignment]
non_negative_int: Callable[[str], int] = _checked(int, lambda v: v >= 0, "must be 0 or more")  # type: ignore[assignment]
seed: Callable[[str], int] = _checked(int, lambda v: 0 <= v <= 2**31 - 1, "must be between 0 and 2147483647")  # type: ignore[assignment]
positive_float = _checked(float, lambda v: v > 0, "must be greater than 0")
fraction = _checked(float, lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1")
temperature = _checked(float, lambda v: 0.0 <= v <= 2.0, "must be between 0 and 2")
