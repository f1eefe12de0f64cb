"""application/problem+json responses (RFC 9457) with stable machine codes."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from pydantic import ValidationError

from promptopt.errors import ApiError, InvalidRequest
from promptopt.http.models import FieldError, Problem

PROBLEM_TYPE_BASE = "https://promptopt.dev/problems/"
CONTENT_TYPE = "application/problem+json"


def problem_body(
    *, status: int, code: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> Problem:
    """The problem document for one error."""
    errors = extra.pop("errors", None)
    return Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=title,
        status=status,
        detail=detail,
        code=code,
        instance=instance,
        errors=errors,
        extra=extra or None,
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
            loc=".".join([where, *(str(p) for p in item["loc"])]),
            msg=item["msg"],
            type=item["type"],
        )
        for item in error.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{e.loc}: {e.msg}" for e in errors[:3])
    return InvalidRequest(
        f"the request {where} is invalid: {summary}", code="validation_failed", errors=errors
    )
