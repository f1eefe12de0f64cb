"""Listing commands: --page-size/--page-token/--all, following tokens, and the `more:` hint."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from promptopt.cli import argtypes, output

if TYPE_CHECKING:
    from promptopt.cli.client import ApiResponse

Fetch = Callable[[str | None], "ApiResponse"]


def add_paging(parser: argparse.ArgumentParser, what: str) -> None:
    """The paging options of a listing command."""
    parser.add_argument(
        "--page-size", type=argtypes.positive_int, metavar="N", help=f"{what} per page (API max 100)"
    )
    parser.add_argument("--page-token", metavar="T", help="continue from a previous page's token")
    parser.add_argument("--all", action="store_true", help="follow next_page_token to the last page")


def pages(fetch: Fetch, first_token: str | None) -> Iterator[ApiResponse]:
    """Every page from `first_token` on, stopping if the server ever repeats a token."""
    token, seen = first_token, set()
    while True:
        reply = fetch(token)
        yield reply
        token = (reply.body or {}).get("next_page_token")
        if not token or token in seen:
            return
        seen.add(token)


def collect(args: argparse.Namespace, fetch: Fetch) -> dict[str, Any]:
    """One page, or with --all every page merged into one page-shaped document."""
    if not args.all:
        body: dict[str, Any] = fetch(args.page_token).body or {}
        return body
    merged: dict[str, Any] = {}
    items: list[Any] = []
    for reply in pages(fetch, args.page_token):
        page = reply.body or {}
        items.extend(page.get("items") or [])
        merged.update(page)
    merged["items"] = items
    merged["next_page_token"] = None
    return merged


def shell_quote(parts: Sequence[str]) -> str:
    """A command line people can paste back into a shell."""
    return " ".join(shlex.quote(p) for p in parts)


def more_hint(command: list[str], args: argparse.Namespace, token: str | None) -> None:
    """On stderr: the command that fetches the next page (unless --all already did)."""
    if token and not args.all:
        if args.page_size is not None:
            command = [*command, "--page-size", str(args.page_size)]
        output.note(f"more: {shell_quote([*command, '--page-token', token])}   (or --all)")
