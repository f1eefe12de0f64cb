"""Opaque page tokens: the last item's sort key, bound to the query that produced it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from promptopt.config import settings
from promptopt.errors import InvalidRequest

C = TypeVar("C")


def _fingerprint(scope: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:12]


def encode_token(cursor: list[Any], scope: dict[str, Any]) -> str:
    """A token resuming after `cursor` for the same query `scope` (filters, sort)."""
    raw = json.dumps({"c": cursor, "s": _fingerprint(scope)}, default=str, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_token(
    token: str | None,
    scope: dict[str, Any],
    parse: Callable[[list[Any]], C] = list,  # type: ignore[assignment]
) -> C | None:
    """The cursor in `token` as `parse` reads it, or None for the first page.

    Tokens are not secret, so a caller can hand-craft one: anything `parse` rejects (wrong length,
    wrong types) is a 400, never an error deeper down.
    """
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor, fingerprint = data["c"], data["s"]
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("page_token is not valid", code="invalid_page_token") from None
    if fingerprint != _fingerprint(scope) or not isinstance(cursor, list):
        raise InvalidRequest(
            "page_token belongs to a different query; restart without it", code="invalid_page_token"
        )
    try:
        return parse(cursor)
    except (ValueError, TypeError, IndexError, KeyError):
        raise InvalidRequest("page_token is not valid", code="invalid_page_token") from None


def page_size(requested: int | None) -> int:
    """The page size to use, within the configured bounds."""
    cfg = settings()
    return min(requested or cfg.default_page_size, cfg.max_page_size)
