"""Schemas shared by every endpoint: problems, pages, strict request base.

The schema modules do not postpone annotations (no `from __future__ import annotations`): pydantic
would compile and evaluate each field's annotation from its string when the class is created, about
a quarter of the time it takes to create a model (2-3 ms of a function's cold start). A method
returning its own model says `Self`.
"""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from promptopt.json_values import MAX_VERSION

__all__ = [
    "MAX_VERSION",
    "FieldError",
    "Health",
    "Page",
    "PageQuery",
    "Problem",
    "RequestModel",
    "ResponseModel",
]

T = TypeVar("T")


class RequestModel(BaseModel):
    """Base for request bodies and queries: unknown fields are an error; strings are kept as sent.

    Bodies are validated strictly (`Call.body`: no "1" for 1, no 1 for true); queries laxly, since
    every query value arrives as a string. Floats must be finite everywhere.
    """

    # Schemas are built on first use: a function imports every model of its resource but uses few.
    model_config = ConfigDict(extra="forbid", defer_build=True, allow_inf_nan=False)


class ResponseModel(BaseModel):
    """Base for response bodies: clients must tolerate fields added in later releases."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


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


class Page(ResponseModel, Generic[T]):
    """One page of a listing; pass next_page_token back as page_token for the next.

    The API's page models spell these two fields out rather than subclass `Page[Item]`: pydantic
    builds a parametrized generic's schema when it is created, on import, while a plain model's
    waits for first use (defer_build), and most functions import pages they never answer with.
    """

    items: list[T]
    next_page_token: str | None = None


class PageQuery(RequestModel):
    """Pagination parameters shared by list endpoints."""

    page_size: int | None = Field(None, ge=1, le=100, description="items per page (default 20)")
    page_token: str | None = Field(None, max_length=512, description="from the previous page")


class Health(ResponseModel):
    """GET /api/v1/health."""

    status: str = "ok"
    version: str
    environment: str
