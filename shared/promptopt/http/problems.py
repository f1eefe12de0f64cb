"""application/problem+json responses (RFC 9457) with stable machine codes."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response
from pydantic import ValidationError

from promptopt.errors import ApiError, InvalidRequest
from promptopt.http.models import FieldError, Problem

PROBLEM_TYPE_BASE = "https://promptopt.dev/problems/"
CONTENT_TYPE = "application/problem+json"

# Problems name things; they never carry the caller's text. Whatever a message quotes (an id from
# the path, a dict key, a placeholder) is cut to a short prefix, and every text field is capped.
MAX_DETAIL_CHARS = 300
MAX_NAME_CHARS = 40
_LONG_RUN = re.compile(r"[^\s/.,;:'\"()\[\]{}]" + f"{{{MAX_NAME_CHARS + 1},}}")


def shorten(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text` with every run longer than a name cut to MAX_NAME_CHARS, and at most `limit` long."""
    text = _LONG_RUN.sub(lambda m: m.group(0)[:MAX_NAME_CHARS] + "…", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_extra(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: shorten(v, MAX_NAME_CHARS * 2) if isinstance(v, str) else v for k, v in extra.items()}


def problem_body(
    *, status: int, code: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> Problem:
    """The problem document for one error."""
    errors = extra.pop("errors", None)
    return Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=title,
        status=status,
        detail=shorten(detail),
        code=code,
        instance=None if instance is None else shorten(instance, 200),
        errors=errors,
        extra=_short_extra(extra) or None,
    )


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    """Serialize a problem (null members left out)."""
    body = json.dumps(problem.model_dump(mode="json", exclude_none=True))
    return Response(body, status=problem.status, content_type=CONTENT_TYPE, headers=headers or {})


def from_api_error(error: ApiError, instance: str | None = None) -> Problem:
    """The problem for a library error."""
    return problem_body(
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        instance=instance,
        **error.extra,
    )


def from_validation(error: ValidationError, where: str) -> InvalidRequest:
    """A 400 listing each invalid field; input values are not echoed (they may be prompt text)."""
    errors = [
        FieldError(
            loc=shorten(".".join([where, *(str(p)[:MAX_NAME_CHARS] for p in item["loc"])]), 200),
            msg=shorten(item["msg"]),
            type=item["type"],
        )
        for item in error.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{e.loc}: {e.msg}" for e in errors[:3])
    return InvalidRequest(
        f"the request {where} is invalid: {summary}", code="validation_failed", errors=errors
    )
