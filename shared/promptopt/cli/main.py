"""Entry point of the `promptopt` command: it assembles the parser and hands the command to dispatch.

The global options live here; each command module registers its own commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from promptopt.cli import argtypes, auth, batch, evaluate, gate, health, inference, keys, prompts
from promptopt.cli.core import dispatch
from promptopt.cli.core.context import (
    API_URL_ENV,
    DEFAULT_API_URL,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    EXIT_USAGE,
    TOKEN_ENV,
    Context,
    Handler,
    version,
)
from promptopt.cli.datasets import parser as datasets
from promptopt.cli.experiments import parser as experiments

if TYPE_CHECKING:
    import httpx

EPILOG = f"""\
environment:
  {API_URL_ENV}   API base URL (default {DEFAULT_API_URL}, the local stack from scripts/dev)
  {TOKEN_ENV}     bearer token (a JWT); prefer it to --token, which other users can see in ps
  PROMPTOPT_API_KEY   an API key, exchanged for a token (a token, when given, wins)

output:
  Results go to stdout, errors and hints to stderr. With --json, stdout holds exactly one JSON
  document: the API's answer (for --all, one page-shaped document holding every item, with
  next_page_token null). With --json, an API error's problem document is also printed to stdout.

exit codes:
  0  success
  1  the server failed (HTTP 5xx), gave no answer (refused, timed out) or an unexpected error
  2  usage error: bad arguments, or the API refused the request (HTTP 4xx)
  3  a check failed: `promptopt gate` (a metric dropped, or is under its floor), or
     `experiments start --wait` / `watch` (the regression run found a drop: regressed)

retries:
  Connection errors, timeouts and HTTP 429/502/503/504 are retried up to --retries times with a
  short backoff. `prompts create` sends one random Idempotency-Key and reuses it on every retry,
  so a retry never creates a second prompt.
"""

#: The command modules, in the order their commands appear in --help.
COMMAND_MODULES = (health, prompts, datasets, inference, evaluate, batch, experiments, gate, auth, keys)


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
    parser = argparse.ArgumentParser(
        prog="promptopt",
        description="Command line client for the promptopt API: version, label and inspect prompts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    _add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, suppress=True)

    groups = parser.add_subparsers(dest="group", metavar="<group>", required=True)
    for module in COMMAND_MODULES:
        module.register(groups, common)
    return parser


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]) and return the exit code.

    `transport`, when given, carries every HTTP request the command makes instead of the network.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    return dispatch.run(handler, args, Context.from_args(args, transport))


if __name__ == "__main__":
    sys.exit(main())
