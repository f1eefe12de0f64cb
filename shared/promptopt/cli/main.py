"""Entry point of the `promptopt` command: global options, dispatch, errors and exit codes."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from promptopt.cli import argtypes, output

if TYPE_CHECKING:
    from promptopt.cli.client import ApiClient, ApiError, TransportError

DEFAULT_API_URL = "http://127.0.0.1:8080"
API_URL_ENV = "PROMPTOPT_API_URL"
TOKEN_ENV = "PROMPTOPT_TOKEN"  # noqa: S105 - the variable's name, not a secret
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3

EXIT_OK = 0
EXIT_FAILURE = 1  # 5xx answers, no answer (refused, timed out), unexpected errors
EXIT_USAGE = 2  # bad arguments and 4xx answers: something the caller can fix

EPILOG = f"""\
environment:
  {API_URL_ENV}   API base URL (default {DEFAULT_API_URL}, the local stack from scripts/dev)
  {TOKEN_ENV}     bearer token (a JWT); prefer it to --token, which other users can see in ps

output:
  Results go to stdout, errors and hints to stderr. With --json, stdout holds exactly one JSON
  document: the API's answer (for --all, one page-shaped document holding every item, with
  next_page_token null). With --json, an API error's problem document is also printed to stdout.

exit codes:
  0  success
  1  the server failed (HTTP 5xx), gave no answer (refused, timed out) or an unexpected error
  2  usage error: bad arguments, or the API refused the request (HTTP 4xx)

retries:
  Connection errors, timeouts and HTTP 429/502/503/504 are retried up to --retries times with a
  short backoff. `prompts create` sends one random Idempotency-Key and reuses it on every retry,
  so a retry never creates a second prompt.
"""

Handler = Callable[[argparse.Namespace, "Context"], int]


class CliError(Exception):
    """A problem found by the CLI itself (bad input, missing module); printed as `error: ...`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Context:
    """Resolved global options, shared by every command."""

    api_url: str
    token: str | None
    json: bool
    timeout_s: float
    retries: int

    def client(self) -> ApiClient:
        """A new API client for these options (httpx is imported only now)."""
        from promptopt.cli.client import ApiClient

        return ApiClient(
            self.api_url,
            token=self.token,
            timeout_s=self.timeout_s,
            retries=self.retries,
            user_agent=f"promptopt-cli/{_version()}",
        )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("promptopt")
    except PackageNotFoundError:
        return "dev"


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Global options; leaf commands repeat them (suppressed defaults) so they work in either place."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--api-url", metavar="URL", default=default(None), help=f"API base URL (env {API_URL_ENV})"
    )
    parser.add_argument("--token", metavar="T", default=default(None), help=f"bearer token (env {TOKEN_ENV})")
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print the API's JSON for scripts"
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=argtypes.positive_float,
        default=default(DEFAULT_TIMEOUT_S),
        help=f"seconds to wait for each request (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--retries",
        metavar="N",
        type=argtypes.non_negative_int,
        default=default(DEFAULT_RETRIES),
        help=f"retries on connection errors and 429/502/503/504 (default {DEFAULT_RETRIES})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (command modules register their own subcommands)."""
    from promptopt.cli import auth, batch, datasets, evaluate, inference, prompts

    parser = argparse.ArgumentParser(
        prog="promptopt",
        description="Command line client for the promptopt API: version, label and inspect prompts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, suppress=True)

    groups = parser.add_subparsers(dest="group", metavar="<group>", required=True)
    health = groups.add_parser("health", parents=[common], help="check that the API answers")
    health.set_defaults(handler=_health)
    prompts.register(groups, common)
    datasets.register(groups, common)
    inference.register(groups, common)
    evaluate.register(groups, common)
    batch.register(groups, common)
    auth.register(groups, common)
    return parser


def _health(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = api.health()
    if ctx.json:
        output.emit_json(reply.body)
    else:
        body = reply.body or {}
        output.emit(output.fields([(k, body.get(k, "-")) for k in ("status", "version", "environment")]))
    return EXIT_OK


def _context(args: argparse.Namespace) -> Context:
    token = (args.token if args.token is not None else os.environ.get(TOKEN_ENV, "")).strip()
    if token.lower().startswith("bearer "):  # tolerate a pasted "Bearer eyJ..."
        token = token[7:].strip()
    return Context(
        api_url=args.api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL,
        token=token or None,
        json=bool(args.json),
        timeout_s=float(args.timeout),
        retries=int(args.retries),
    )


def _report_api_error(error: ApiError, ctx: Context) -> int:
    if ctx.json:
        output.emit_json(error.problem)
    output.note(f"error: {error.detail} ({error.code}, HTTP {error.status})")
    for item in error.field_errors:
        output.note(f"  {item.get('loc', '?')}: {item.get('msg', '')}")
    if error.status == 401 and not ctx.token:
        output.note(
            f"hint: no token was sent; pass --token or set {TOKEN_ENV} (for the local stack: "
            f"export {TOKEN_ENV}=$(promptopt auth dev-token --tenant TENANT --role editor))"
        )
    if error.code == "version_mismatch":
        output.note(
            "hint: someone saved a newer version; look at it (promptopt prompts versions ID), then "
            "retry with its number as --base-version, or without --base-version to build on the latest"
        )
    if error.attempts > 1 and error.method in {"PUT", "DELETE"} and 400 <= error.status < 500:
        output.note(
            f"note: this answer came on attempt {error.attempts}; an earlier attempt that got no "
            "answer may already have been applied"
        )
    return EXIT_USAGE if 400 <= error.status < 500 else EXIT_FAILURE


def _report_transport_error(error: TransportError, ctx: Context) -> int:
    tries = f"{error.attempts} attempt{'s' if error.attempts != 1 else ''}"
    if error.kind == "connect":
        output.note(
            f"error: cannot connect to the promptopt API at {ctx.api_url} ({error.reason}; {tries}).\n"
            f"  Is it running? Start the local stack with scripts/dev, or point --api-url / "
            f"{API_URL_ENV} at your API gateway."
        )
    elif error.kind == "timeout":
        output.note(
            f"error: the promptopt API at {ctx.api_url} did not answer within {ctx.timeout_s:g}s "
            f"({tries}); try again, or raise --timeout"
        )
    else:
        output.note(f"error: the connection to {ctx.api_url} failed: {error.reason} ({tries})")
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    ctx = _context(args)
    handler: Handler = args.handler
    from promptopt.cli.client import ApiError, TransportError

    try:
        return handler(args, ctx)
    except CliError as error:
        output.note(f"error: {error.message}")
        return error.exit_code
    except ApiError as error:
        return _report_api_error(error, ctx)
    except TransportError as error:
        return _report_transport_error(error, ctx)
    except KeyboardInterrupt:
        output.note("interrupted")
        return 130
    except BrokenPipeError:  # `promptopt ... | head`: the reader left; not an error worth a traceback
        # As the Python docs advise: point stdout at devnull so the exit-time flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE


def shell_quote(parts: Sequence[str]) -> str:
    """A command line people can paste back into a shell."""
    return " ".join(shlex.quote(p) for p in parts)


if __name__ == "__main__":
    sys.exit(main())
