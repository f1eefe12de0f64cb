"""`promptopt health`: is the API up."""

from __future__ import annotations

import argparse

from promptopt.cli import output
from promptopt.cli.core.commands import Groups, emit_result, top_level
from promptopt.cli.core.context import Context


def _health(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = api.health()
    body = reply.body or {}
    return emit_result(
        ctx,
        reply.body,
        lambda: output.emit(
            output.fields([(k, body.get(k, "-")) for k in ("status", "version", "environment")])
        ),
    )


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `health` command to the top-level subparsers."""
    top_level(groups, common, "health", _health, help="check that the API answers")
