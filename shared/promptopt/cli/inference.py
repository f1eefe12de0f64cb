"""`promptopt complete`: one model call for a stored or inline prompt."""

from __future__ import annotations

import argparse
from typing import Any

from promptopt.cli import output
from promptopt.cli.core.commands import Groups, top_level
from promptopt.cli.core.context import EXIT_OK, CliError, Context


def parse_variables(items: list[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs for the template's placeholders."""
    variables: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--var {item!r}: expected NAME=VALUE")
        variables[name] = value
    return variables


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API request for the command's options."""
    body: dict[str, Any] = {}
    if args.prompt_id:
        if args.output_prompt or args.system_prompt:
            raise CliError("give --prompt-id or an inline --output-prompt, not both")
        body["prompt_id"] = args.prompt_id
        if args.version is not None:
            body["version"] = args.version
        if args.label is not None:
            body["label"] = args.label
    elif args.output_prompt:
        body["output_prompt"] = args.output_prompt
        if args.system_prompt:
            body["system_prompt"] = args.system_prompt
    else:
        raise CliError("give --prompt-id ID or --output-prompt TEMPLATE")
    if args.input is not None:
        body["user_input"] = args.input
    if args.var:
        body["variables"] = parse_variables(args.var)
    for option in ("model", "temperature", "max_tokens"):
        value = getattr(args, option)
        if value is not None:
            body[option] = value
    return body


def _complete(args: argparse.Namespace, ctx: Context) -> int:
    body = request_body(args)
    with ctx.client() as api:
        reply = api.complete(body)
    result = reply.body or {}
    if ctx.json:
        output.emit_json(result)
        return EXIT_OK
    output.emit(result.get("text", ""))
    usage = result.get("usage") or {}
    simulated = " (simulator)" if result.get("simulated") else ""
    output.note(
        f"{result.get('model')}{simulated}: {usage.get('input_tokens', 0)} in / "
        f"{usage.get('output_tokens', 0)} out tokens, ${result.get('cost_usd', 0):.6f}, "
        f"{result.get('latency_ms', 0):.0f} ms"
    )
    return EXIT_OK


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `complete` command to the top-level subparsers."""
    parser = top_level(
        groups,
        common,
        "complete",
        _complete,
        help="run a prompt once against a model",
        description="Render a stored (--prompt-id) or inline (--output-prompt) prompt and call a model once.",
    )
    parser.set_defaults(handler=_complete)
    parser.add_argument("--prompt-id", metavar="ID", help="a stored prompt (latest version by default)")
    selector = parser.add_mutually_exclusive_group()
    selector.add_argument("--version", type=int, metavar="N", help="with --prompt-id: this version")
    selector.add_argument("--label", metavar="L", help="with --prompt-id: the version this label names")
    parser.add_argument("--output-prompt", metavar="TEMPLATE", help="inline template, e.g. 'Q: {input}'")
    parser.add_argument("--system-prompt", metavar="TEXT", help="inline system prompt")
    parser.add_argument("--input", metavar="TEXT", help="fills {input}")
    parser.add_argument("--var", action="append", metavar="NAME=VALUE", help="fills {NAME} (repeatable)")
    parser.add_argument(
        "--model", metavar="M", help="e.g. sim:default, gemini:gemini-2.5-flash, openai:llama3"
    )
    parser.add_argument("--temperature", type=float, metavar="T")
    parser.add_argument("--max-tokens", type=int, metavar="N")
