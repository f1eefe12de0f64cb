"""Resolved global options (`Context`), the CLI's own errors and its exit codes."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from promptopt.cli.client import ApiClient

DEFAULT_API_URL = "http://127.0.0.1:8080"
API_URL_ENV = "PROMPTOPT_API_URL"
TOKEN_ENV = "PROMPTOPT_TOKEN"  # noqa: S105 - the variable's name, not a secret
API_KEY_ENV = "PROMPTOPT_API_KEY"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3

EXIT_OK = 0
EXIT_FAILURE = 1  # 5xx answers, no answer (refused, timed out), unexpected errors
EXIT_USAGE = 2  # bad arguments and 4xx answers: something the caller can fix
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A problem found by the CLI itself (bad input, missing module); printed as `error: ...`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Context:
    """Resolved global options, shared by every command.

    `transport` replaces httpx's network transport for every request the command makes (the API
    and signed-URL uploads alike); tests pass one that reaches the function apps in-process.
    """

    api_url: str
    token: str | None
    json: bool
    timeout_s: float
    retries: int
    transport: httpx.BaseTransport | None = None
    api_key: str | None = None  # from PROMPTOPT_API_KEY only (a flag would show it in ps)

    def client(self) -> ApiClient:
        """A new API client for these options (httpx is imported only now).

        A token wins over an API key; the key is exchanged for a token when the first call needs one.
        """
        from promptopt.cli.client import ApiClient
        from promptopt.client.client import credentials_from

        credentials = credentials_from(token=self.token, api_key=None, env={})
        if credentials is None and self.api_key:
            from promptopt.cli.token_cache import CachedApiKey

            credentials = CachedApiKey(self.api_key, self.api_url)
        return ApiClient(
            self.api_url,
            credentials=credentials,
            timeout_s=self.timeout_s,
            retries=self.retries,
            user_agent=f"promptopt-cli/{version()}",
            transport=self.transport,
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace, transport: httpx.BaseTransport | None = None) -> Context:
        """The options as given, with the environment's defaults."""
        token = (args.token if args.token is not None else os.environ.get(TOKEN_ENV, "")).strip()
        if token.lower().startswith("bearer "):  # tolerate a pasted "Bearer eyJ..."
            token = token[7:].strip()
        return cls(
            api_url=args.api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL,
            token=token or None,
            json=bool(args.json),
            timeout_s=float(args.timeout),
            retries=int(args.retries),
            transport=transport,
            api_key=os.environ.get(API_KEY_ENV, "").strip() or None,
        )


Handler = Callable[[argparse.Namespace, Context], int]


def version() -> str:
    """The installed promptopt version, or `dev` in a bare checkout."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("promptopt")
    except PackageNotFoundError:
        return "dev"
