"""What `serve` answers on its own: RFC 9457 problems and the health check.

Apart from `promptopt.http.models` so that functions validating a body do not create these
classes on their cold start: `promptopt.http.problems` writes problems as plain dicts in this
shape (tests/unit/test_problems.py validates them against `Problem`), and the OpenAPI document and
the Python client read the schemas from here.
"""

from typing import Any

from pydantic import Field

from promptopt.http.models import ResponseModel


class FieldError(ResponseModel):
    """One validation failure."""

    loc: str = Field(description="where the problem is, e.g. body.metadata.team")
    msg: str
    type: str


class Problem(ResponseModel):
    """RFC 9457 problem details, with a stable machine code."""

    type: str = Field(description="a URI naming the problem type")
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable code")
    instance: str | None = None
    errors: list[FieldError] | None = None
    extra: dict[str, Any] | None = None


class Health(ResponseModel):
    """GET /api/v1/health."""

    status: str = "ok"
    version: str
    environment: str
