"""The bases of every schema, and the pagination query shared by list endpoints.

What `serve` answers on its own (problems, the health check) is described apart, in
`promptopt.http.answer_models`: a function that validates a body imports this module, and creating
those classes would add to its cold start for schemas only the OpenAPI document and clients use.

The schema modules do not postpone annotations (no `from __future__ import annotations`): pydantic
would compile and evaluate each field's annotation from its string when the class is created, about
a quarter of the time it takes to create a model (2-3 ms of a function's cold start). A method
returning its own model says `Self`.
"""

from pydantic import BaseModel, ConfigDict, Field

from promptopt.json_values import MAX_VERSION

__all__ = ["MAX_VERSION", "PageQuery", "RequestModel", "ResponseModel"]


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


class PageQuery(RequestModel):
    """Pagination parameters shared by list endpoints."""

    page_size: int | None = Field(None, ge=1, le=100, description="items per page (default 20)")
    page_token: str | None = Field(None, max_length=512, description="from the previous page")
