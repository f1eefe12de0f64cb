"""What every resource shares: the HTTP client, and request bodies built from the API's own models."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from promptopt.client.http import HttpClient

M = TypeVar("M", bound=BaseModel)


def body_of(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for `fields` (those given as None left out), checked by the API's request model.

    A value the API would refuse raises pydantic's ValidationError here, before anything is sent.
    """
    given = {k: v.model_dump(mode="json", exclude_unset=True) if isinstance(v, BaseModel) else v
             for k, v in fields.items() if v is not None}  # fmt: skip
    return model.model_validate(given).model_dump(mode="json", exclude_unset=True)


def parse(model: type[M], body: Any) -> M:
    """An API answer as its response model."""
    return model.model_validate(body)


class Resource:
    """A group of endpoints over the shared HTTP client."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http
