"""`promptopt prompts ...`: create, read, update, edit, list, lineage, labels, archive and delete."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from promptopt.cli import argtypes, output
from promptopt.cli.core.commands import Groups, add_text_option, command_group, emit_result, text_option
from promptopt.cli.core.context import EXIT_OK, CliError, Context
from promptopt.cli.core.paging import add_paging, collect, more_hint

if TYPE_CHECKING:
    from promptopt.cli.client import ApiResponse

MetadataValue = str | int | float | bool | None

METADATA_HELP = (
    'KEY=VALUE pairs (repeatable); values are strings, so team=3 sends "3"; write KEY:=JSON for a '
    "number, boolean or null, e.g. temperature:=0.2 draft:=true"
)


def parse_metadata(items: Sequence[str]) -> dict[str, MetadataValue]:
    """Parse `KEY=VALUE` (a string) and `KEY:=JSON` (a JSON scalar) pairs; a repeated key keeps the last."""
    metadata: dict[str, MetadataValue] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        typed = key.endswith(":")
        key = key[:-1] if typed else key
        if not sep or not key:
            raise CliError(f"--metadata {item!r}: expected KEY=VALUE or KEY:=JSON")
        if not typed:
            metadata[key] = raw
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            raise CliError(
                f"--metadata {item!r}: {raw!r} is not JSON (quote strings, or use KEY=VALUE)"
            ) from None
        if isinstance(value, dict | list):
            raise CliError(f"--metadata {item!r}: values must be a string, number, boolean or null")
        metadata[key] = value
    return metadata


# -- human views -----------------------------------------------------------------------------


def _parent_version(parent_id: Any) -> str:
    if not isinstance(parent_id, str) or "@" not in parent_id:
        return "-"
    return parent_id.rsplit("@", 1)[1]


def _version_fields(version: dict[str, Any], etag: str | None) -> list[tuple[str, Any]]:
    provenance = version.get("provenance") or {}
    pairs: list[tuple[str, Any]] = [
        ("prompt_id", version.get("prompt_id")),
        ("name", version.get("name") or "-"),
        ("version", f"{version.get('version')}" + (f"  (ETag {etag})" if etag else "")),
        ("parent", version.get("parent_id") or "-"),
        ("labels", output.labels_text(version.get("labels") or [])),
        ("variables", ", ".join(version.get("variables") or []) or "-"),
        ("metadata", output.metadata_text(version.get("metadata"))),
        ("created", f"{output.timestamp(version.get('created_at'))} by {version.get('created_by', '-')}"),
        ("source", provenance.get("source", "user")),
    ]
    if provenance.get("message"):
        pairs.append(("message", provenance["message"]))
    return pairs


def _show_version(reply: ApiResponse, *, texts: bool) -> None:
    version = reply.body or {}
    text = output.fields(_version_fields(version, reply.etag))
    if texts:
        system = version.get("system_prompt") or ""
        text += "\n\n--- system prompt ---\n" + (system if system else "(empty)")
        text += "\n\n--- output prompt ---\n" + (version.get("output_prompt") or "")
    output.emit(text)


# -- commands --------------------------------------------------------------------------------


def _create(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {"output_prompt": text_option(args, "output_prompt")}
    system = text_option(args, "system_prompt")
    if system is not None:
        body["system_prompt"] = system
    if args.name is not None:
        body["name"] = args.name
    if args.metadata:
        body["metadata"] = parse_metadata(args.metadata)
    with ctx.client() as api:
        reply = api.create_prompt(body, idempotency_key=args.idempotency_key)

    def human() -> None:
        if reply.headers.get("idempotent-replayed") == "true":
            output.note("note: this Idempotency-Key was used before; showing the prompt it created")
        _show_version(reply, texts=False)

    return emit_result(ctx, reply.body, human)


def _get(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = api.get_prompt(args.prompt_id, version=args.version, label=args.label)
    return emit_result(ctx, reply.body, lambda: _show_version(reply, texts=True))


def _update(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {}
    for name in ("system_prompt", "output_prompt"):
        value = text_option(args, name)
        if value is not None:
            body[name] = value
    if args.name is not None:
        body["name"] = args.name
    if args.metadata:
        body["metadata"] = parse_metadata(args.metadata)
    if not body:
        raise CliError("nothing to change: give --system-prompt, --output-prompt, --name or --metadata")
    if args.message is not None:
        body["message"] = args.message
    with ctx.client() as api:
        if args.base_version is not None:
            if_match = f'"v{args.base_version}"'
        else:
            latest = api.get_prompt(args.prompt_id)
            if_match = latest.etag or f'"v{latest.body["version"]}"'
        reply = api.update_prompt(args.prompt_id, body, if_match=if_match)
    return emit_result(ctx, reply.body, lambda: _show_version(reply, texts=False))


def _edit(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {}
    if args.name is not None:
        body["name"] = args.name
    if args.description is not None:
        body["description"] = args.description
    if args.tags is not None:
        body["tags"] = [t.strip() for t in args.tags.split(",") if t.strip()]
    if not body:
        raise CliError("nothing to change: give --name, --description or --tags")
    if_match = f'"v{args.base_version}"' if args.base_version is not None else "*"
    with ctx.client() as api:
        reply = api.patch_prompt(args.prompt_id, body, if_match=if_match)
    return emit_result(ctx, reply.body, lambda: _show_version(reply, texts=False))


def _rename(args: argparse.Namespace, ctx: Context) -> int:
    args.description = args.tags = args.base_version = None
    return _edit(args, ctx)


def _summary(reply: ApiResponse, ctx: Context, done: str) -> int:
    return emit_result(ctx, reply.body, lambda: output.emit(done))


def _archive(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = api.archive_prompt(args.prompt_id)
    return _summary(reply, ctx, f"archived {args.prompt_id} (hidden from `prompts list` but --archived)")


def _unarchive(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        reply = api.archive_prompt(args.prompt_id, undo=True)
    return _summary(reply, ctx, f"unarchived {args.prompt_id}")


def _delete(args: argparse.Namespace, ctx: Context) -> int:
    if not args.yes:
        raise CliError(f"deleting {args.prompt_id} removes every version for good; pass --yes to confirm")
    with ctx.client() as api:
        api.delete_prompt(args.prompt_id)
    if ctx.json:
        output.emit_json({"prompt_id": args.prompt_id, "deleted": True})
    else:
        output.emit(f"deleted {args.prompt_id}")
    return EXIT_OK


def _list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:

        def fetch(token: str | None) -> ApiResponse:
            return api.list_prompts(
                name=args.name,
                label=args.label,
                sort=args.sort,
                include_archived=args.archived,
                page_size=args.page_size,
                page_token=token,
            )

        page = collect(args, fetch)
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    items = page.get("items") or []
    if items:
        rows = [
            [
                p.get("prompt_id"),
                p.get("name") if not p.get("archived") else f"{p.get('name') or '-'} (archived)",
                p.get("latest_version"),
                output.labels_text(p.get("labels") or {}),
                output.timestamp(p.get("updated_at")),
                p.get("created_by"),
            ]
            for p in items
        ]
        output.emit(output.table(["PROMPT_ID", "NAME", "LATEST", "LABELS", "UPDATED", "CREATED_BY"], rows))
    else:
        output.note("no prompts")
    command = ["promptopt", "prompts", "list"]
    for flag, value in (("--name", args.name), ("--label", args.label), ("--sort", args.sort)):
        if value is not None:
            command += [flag, value]
    if args.archived:
        command.append("--archived")
    more_hint(command, args, page.get("next_page_token"))
    return EXIT_OK


def _versions(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:

        def fetch(token: str | None) -> ApiResponse:
            return api.list_versions(args.prompt_id, page_size=args.page_size, page_token=token)

        page = collect(args, fetch)
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    rows = []
    for v in page.get("items") or []:
        provenance = v.get("provenance") or {}
        rows.append(
            [
                v.get("version"),
                _parent_version(v.get("parent_id")),
                output.labels_text(v.get("labels") or []),
                provenance.get("source", "user"),
                v.get("created_by"),
                output.timestamp(v.get("created_at")),
                provenance.get("message"),
            ]
        )
    header = ["VERSION", "PARENT", "LABELS", "SOURCE", "CREATED_BY", "CREATED_AT", "MESSAGE"]
    output.emit(f"prompt {args.prompt_id}  labels: {output.labels_text(page.get('labels') or {})}")
    output.emit(output.table(header, rows))
    more_hint(["promptopt", "prompts", "versions", args.prompt_id], args, page.get("next_page_token"))
    return EXIT_OK


def _label(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        if args.remove:
            reply = api.remove_label(args.prompt_id, args.label)
            done = f"removed label {args.label} from {args.prompt_id}"
        else:
            reply = api.set_label(args.prompt_id, args.label, args.version)
            done = f"label {args.label} of {args.prompt_id} -> version {args.version}"

    def human() -> None:
        labels = (reply.body or {}).get("labels") or {}
        output.emit(f"{done}\nlabels: {output.labels_text(labels)}")

    return emit_result(ctx, reply.body, human)


# -- parser ----------------------------------------------------------------------------------


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `prompts` group and its commands to the top-level subparsers."""
    command = command_group(
        groups, common, "prompts", help="create, read, update, list, label, archive and delete prompts"
    )

    create = command("create", _create, help="create a prompt (version 1)")
    add_text_option(create, "output_prompt", "the output template, with {placeholders}", required=True)
    add_text_option(create, "system_prompt", "the system prompt", required=False)
    create.add_argument("--name", help="a display name")
    create.add_argument("--metadata", nargs="+", action="extend", metavar="KEY=VALUE", help=METADATA_HELP)
    create.add_argument(
        "--idempotency-key",
        metavar="K",
        help="use this Idempotency-Key instead of a random one (to retry a create from a script)",
    )

    get = command("get", _get, help="show a version (the latest, or by --version / --label)")
    get.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    selector = get.add_mutually_exclusive_group()
    selector.add_argument("--version", type=argtypes.positive_int, metavar="N", help="this version number")
    selector.add_argument("--label", metavar="L", help="the version this label points at")

    listing = command("list", _list, help="list prompts, newest first")
    listing.add_argument("--name", help="only prompts with exactly this name")
    listing.add_argument("--label", metavar="L", help="only prompts carrying this label")
    listing.add_argument(
        "--sort",
        choices=["created", "-created", "updated", "-updated", "name", "-name"],
        help="the order ('-' for descending; default -created, newest first)",
    )
    listing.add_argument("--archived", action="store_true", help="list archived prompts too")
    add_paging(listing, "prompts")

    edit = command(
        "edit",
        _edit,
        help="rename, describe or tag a prompt (no new version)",
        description="Change the prompt's own fields in place; its versions stay as they are.",
    )
    edit.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    edit.add_argument("--name", help="the new name")
    edit.add_argument("--description", metavar="TEXT", help="what the prompt is for")
    edit.add_argument("--tags", metavar="A,B", help="comma-separated tags (replace the current ones)")
    edit.add_argument(
        "--base-version",
        type=argtypes.positive_int,
        metavar="N",
        help="fail (HTTP 412) unless N is still the latest version",
    )

    rename = command("rename", _rename, help="rename a prompt (no new version)")
    rename.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    rename.add_argument("name", metavar="NAME", help="the new name")

    archive = command("archive", _archive, help="hide a prompt from listings (admin; not while in use)")
    archive.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    unarchive = command("unarchive", _unarchive, help="list an archived prompt again (admin)")
    unarchive.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    delete = command("delete", _delete, help="delete a prompt and its versions (admin; not while in use)")
    delete.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    delete.add_argument("--yes", action="store_true", help="confirm the deletion")

    update = command(
        "update",
        _update,
        help="create the next version",
        description="Create the next version of a prompt; options left out keep the base version's value. "
        "Without --base-version the latest version is fetched and used as the base.",
    )
    update.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    update.add_argument(
        "--base-version",
        type=argtypes.positive_int,
        metavar="N",
        help="the version this edit is based on; fails (HTTP 412) if it is no longer the latest",
    )
    add_text_option(update, "system_prompt", "the new system prompt", required=False)
    add_text_option(update, "output_prompt", "the new output template", required=False)
    update.add_argument("--name", help="a new display name")
    update.add_argument(
        "--metadata",
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        help=METADATA_HELP + "; replaces the whole metadata of the base version",
    )
    update.add_argument("--message", metavar="M", help="why this version exists (shown in the lineage)")

    versions = command("versions", _versions, help="show the lineage: versions, parents, labels")
    versions.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    add_paging(versions, "versions")

    label = command("label", _label, help="point a label at a version, or remove it")
    label.add_argument("prompt_id", metavar="ID", help="prompt id (pr_...)")
    label.add_argument("label", metavar="LABEL", help="e.g. production (lowercase letters, digits, - and _)")
    action = label.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--version", type=argtypes.positive_int, metavar="N", help="the version the label points at"
    )
    action.add_argument("--remove", action="store_true", help="remove the label")
