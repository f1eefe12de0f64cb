"""application/problem+json responses (RFC 9457) with stable machine codes.

Problems are plain dicts in the shape of `promptopt.http.answer_models.Problem` (the schema the
OpenAPI document publishes; tests/unit/test_problems.py validates these dicts against it): every function
answers errors, and building them through the model would import pydantic and build its schema on
the cold start of functions whose first request needs no pydantic at all.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Response

from promptopt.errors import ApiError, InvalidRequest

if TYPE_CHECKING:
    from pydantic import ValidationError

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
) -> dict[str, Any]:
    """The problem document for one error (a `Problem`, null members left out)."""
    errors = extra.pop("errors", None)
    problem = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": shorten(detail),
        "code": code,
        "instance": None if instance is None else shorten(instance, 200),
        "errors": errors,
        "extra": _short_extra(extra) or None,
    }
    return {k: v for k, v in problem.items() if v is not None}


def json_default(value: Any) -> Any:
    """What pydantic's JSON mode makes of a value json cannot encode (`json.dumps(default=...)`).

    Handlers that answer with plain dicts (no pydantic on their cold start) and problems' extra
    members serialize datetimes as the response models do: ISO 8601, UTC as Z.
    """
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """Serialize a problem."""
    body = json.dumps(problem, default=json_default)
    return Response(body, status=problem["status"], content_type=CONTENT_TYPE, headers=headers or {})


def from_api_error(error: ApiError, instance: str | None = None) -> dict[str, Any]:
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
    errors = [  # each a `FieldError`
        {
            "loc": shorten(".".join([where, *(str(p)[:MAX_NAME_CHARS] for p in item["loc"])]), 200),
            "msg": shorten(item["msg"]),
            "type": item["type"],
        }
        for item in error.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:3])
    return InvalidRequest(
        f"the request {where} is invalid: {summary}", code="validation_failed", errors=errors
    )
