"""`promptopt keys ...` and `promptopt whoami`: API keys for machines, and who the API sees."""

from __future__ import annotations

import argparse
from typing import Any

from promptopt.cli import argtypes, output
from promptopt.cli.core.commands import Groups, command_group, emit_result, top_level
from promptopt.cli.core.context import Context

ROLES = ("viewer", "editor", "admin")


def _create(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.expires_in_days is not None:
        body["expires_in_days"] = args.expires_in_days
    with ctx.client() as api:
        reply = api.create_api_key(body)
    created = reply.body or {}

    def human() -> None:
        output.emit(str(created.get("secret")))
        output.note(
            f"key {created.get('key_id')} ({created.get('role')}): store the line above now, it is shown "
            "once; use it as PROMPTOPT_API_KEY"
        )

    return emit_result(ctx, reply.body, human)


def _list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = api.list_api_keys()
    items = (reply.body or {}).get("items", [])
    columns = ("key_id", "name", "role", "status", "prefix", "last_used_at", "expires_at")
    return emit_result(
        ctx,
        reply.body,
        lambda: output.emit(output.table(columns, [[k.get(c) or "-" for c in columns] for k in items])),
    )


def _revoke(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        api.revoke_api_key(args.key_id)
    return emit_result(
        ctx, {"key_id": args.key_id, "revoked": True}, lambda: output.emit(f"revoked {args.key_id}")
    )


def _whoami(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = api.me()
    body = reply.body or {}
    fields = ("subject", "tenant", "role", "credential", "key_id")
    return emit_result(
        ctx, reply.body, lambda: output.emit(output.fields([(k, body.get(k) or "-") for k in fields]))
    )


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `keys` group and the `whoami` command."""
    top_level(groups, common, "whoami", _whoami, help="who the API takes you to be (GET /me)")
    add = command_group(groups, common, "keys", help="API keys for machines (admin)")
    create = add("create", _create, help="create a key; its secret is printed once")
    create.add_argument("--name", required=True, help="what the key is for, e.g. ci-nightly")
    create.add_argument("--role", choices=ROLES, required=True, help="its tokens' role (at most yours)")
    create.add_argument(
        "--expires-in-days", type=argtypes.positive_int, metavar="N", help="expiry (default never)"
    )
    add("list", _list, help="the tenant's keys (no secrets)")
    revoke = add("revoke", _revoke, help="revoke a key (its tokens stop working within a minute)")
    revoke.add_argument("key_id")
