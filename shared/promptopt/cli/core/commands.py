"""The command wrapper: a group's subcommands share the global options and name their handler."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from promptopt.cli import output
from promptopt.cli.core.context import EXIT_OK, CliError, Context, Handler

Groups: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class AddCommand(Protocol):
    """Adds one subcommand that runs `handler`."""

    def __call__(self, name: str, handler: Handler, **kwargs: Any) -> argparse.ArgumentParser:
        """The new command's parser."""
        ...


def command_group(groups: Groups, common: argparse.ArgumentParser, name: str, *, help: str) -> AddCommand:
    """Add the group `name` and return a function that adds its commands (with the global options)."""
    group = groups.add_parser(name, help=help)
    commands = group.add_subparsers(dest="command", metavar="<command>", required=True)

    def command(name: str, handler: Handler, **kwargs: Any) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, parents=[common], **kwargs)
        parser.set_defaults(handler=handler)
        return parser

    return command


def top_level(
    groups: Groups, common: argparse.ArgumentParser, name: str, handler: Handler, **kwargs: Any
) -> argparse.ArgumentParser:
    """A command without a group (`promptopt health`, `promptopt evaluate`)."""
    parser = groups.add_parser(name, parents=[common], **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def emit_result(ctx: Context, body: Any, human: Callable[[], None]) -> int:
    """The API's JSON with --json, else the human view; exit 0."""
    if ctx.json:
        output.emit_json(body)
    else:
        human()
    return EXIT_OK


# -- text given inline or from a file -------------------------------------------------------------


def read_text(path: str, option: str) -> str:
    """The content of `path` (- for stdin); a usage error naming `option` when it cannot be read."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{option} {path}: cannot read it ({exc})") from None


def add_text_option(parser: argparse.ArgumentParser, name: str, what: str, *, required: bool) -> None:
    """`--NAME TEXT` or `--NAME-file FILE`, one of the two."""
    flag = "--" + name.replace("_", "-")
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(flag, dest=name, metavar="TEXT", help=what)
    group.add_argument(
        f"{flag}-file", dest=f"{name}_file", metavar="FILE", help=f"read {what} from FILE (- for stdin)"
    )


def text_option(args: argparse.Namespace, name: str) -> str | None:
    """The value of --NAME or the content of --NAME-file (argparse makes them exclusive)."""
    path = getattr(args, f"{name}_file")
    if path is not None:
        return read_text(path, f"--{name.replace('_', '-')}-file")
    value: str | None = getattr(args, name)
    return value
