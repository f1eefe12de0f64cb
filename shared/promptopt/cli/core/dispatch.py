"""Running a command: its errors become messages on stderr and the documented exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from promptopt.cli import output
from promptopt.cli.core.context import (
    API_URL_ENV,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    TOKEN_ENV,
    CliError,
    Context,
    Handler,
)

if TYPE_CHECKING:
    from promptopt.cli.client import ApiError, TransportError


def run(handler: Handler, args: argparse.Namespace, ctx: Context) -> int:
    """Run `handler` and return its exit code, reporting any error on stderr."""
    from promptopt.cli.client import ApiError, TransportError

    try:
        return handler(args, ctx)
    except CliError as error:
        output.note(f"error: {error.message}")
        return error.exit_code
    except ApiError as error:
        return report_api_error(error, ctx)
    except TransportError as error:
        return report_transport_error(error, ctx)
    except KeyboardInterrupt:
        output.note("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `promptopt ... | head`: the reader left; not an error worth a traceback
        # As the Python docs advise: point stdout at devnull so the exit-time flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE


def report_api_error(error: ApiError, ctx: Context) -> int:
    """The API refused or failed: its problem, hints for the usual causes; exit 2 (4xx) or 1."""
    if ctx.json:
        output.emit_json(error.problem)
    output.note(f"error: {error.detail} ({error.code}, HTTP {error.status})")
    for item in error.field_errors:
        output.note(f"  {item.get('loc', '?')}: {item.get('msg', '')}")
    if error.status == 401 and not ctx.token and not ctx.api_key:
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


def report_transport_error(error: TransportError, ctx: Context) -> int:
    """No answer from the API: where the CLI looked and what to try; exit 1."""
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
