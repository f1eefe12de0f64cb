"""Iterating over a paginated listing: follow `next_page_token` until the last page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T", covariant=True)


class PageLike(Protocol[T]):
    """A page of a listing (every `Page` model of the API)."""

    @property
    def items(self) -> list[Any]:
        """The items of this page."""
        ...

    @property
    def next_page_token(self) -> str | None:
        """The token of the next page, or None on the last."""
        ...


P = TypeVar("P", bound=PageLike[Any])


def pages(fetch: Callable[[str | None], P], first_token: str | None = None) -> Iterator[P]:
    """Every page from `first_token` on, fetched as it is needed; stops if a token ever repeats."""
    token, seen = first_token, set()
    while True:
        page = fetch(token)
        yield page
        token = page.next_page_token
        if not token or token in seen:
            return
        seen.add(token)
