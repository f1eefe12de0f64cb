"""The `datasets` command handlers: send a file (inline or by signed URL), then read and delete."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from promptopt.cli import output
from promptopt.cli.core.context import EXIT_FAILURE, EXIT_OK, CliError, Context
from promptopt.cli.core.paging import collect, more_hint
from promptopt.cli.datasets.api import DatasetApi
from promptopt.cli.datasets.bundled import bundled, bundled_catalog, bundled_dir
from promptopt.cli.datasets.files import (
    EXTENSION_FORMATS,
    Source,
    add_content,
    format_of,
    parse_splits,
    read_source,
)
from promptopt.cli.datasets.render import outcome_lines, rows_table, show_created, show_dataset
from promptopt.cli.datasets.upload import put_file
from promptopt.cli.datasets.waiting import find_version, wait_for_version

if TYPE_CHECKING:
    from promptopt.cli.client import ApiResponse


def _idempotency_key(args: argparse.Namespace) -> str:
    return str(args.idempotency_key or uuid.uuid4())


def _send(
    args: argparse.Namespace,
    ctx: Context,
    source: Source,
    *,
    request: Callable[[DatasetApi, dict[str, Any]], ApiResponse],
    body: dict[str, Any],
    retry_hint: Callable[[str], str],
) -> int:
    """Create the version (inline or with an upload URL), upload, then maybe wait; print the result."""
    inline = add_content(body, source, args.via)
    with ctx.client() as api:
        datasets = DatasetApi(api)
        reply = request(datasets, body)
        created: dict[str, Any] = reply.body or {}
        dataset_id = str((created.get("dataset") or {}).get("dataset_id"))
        number = int((created.get("version") or {}).get("version") or 0)
        if not ctx.json:
            show_created(created, inline)
        upload = created.get("upload")
        needs_upload = not inline
        if needs_upload and reply.headers.get("idempotent-replayed") == "true":
            # A replayed create: the first run may have uploaded the file already.
            current = find_version(datasets.get(dataset_id).body or {}, number) or {}
            if current.get("status", "pending") != "pending":
                output.note(
                    f"note: this Idempotency-Key was used before; {dataset_id} version {number} has its file"
                )
                needs_upload = False
        if needs_upload:
            if not isinstance(upload, dict) or not upload.get("url"):
                raise CliError("the API gave no upload URL for the file", EXIT_FAILURE)
            put_file(
                upload,
                source.path,
                source.size,
                timeout_s=ctx.timeout_s,
                retries=ctx.retries,
                retry_hint=retry_hint(dataset_id),
                transport=ctx.transport,
            )
        if not args.wait:
            if ctx.json:
                output.emit_json(created)
            else:
                output.note(
                    f"{dataset_id} version {number} is being ingested; see it with: promptopt datasets get "
                    f"{dataset_id} (or pass --wait)"
                )
            return EXIT_OK
        dataset, version = wait_for_version(datasets, dataset_id, number, timeout_s=args.wait_timeout)
    if ctx.json:
        output.emit_json({**created, "dataset": dataset, "version": version})
    else:
        output.emit("\n".join(outcome_lines(dataset_id, version)))
    if version.get("status") == "ready":
        return EXIT_OK
    reason = str((version.get("failure") or {}).get("reason") or "")
    if args.command == "create" and "skip_bad_rows" in reason and not args.skip_bad_rows:
        output.note("hint: to ingest the good rows and skip the bad ones, create it with --skip-bad-rows")
    return EXIT_FAILURE


def create_dataset(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets create`: a dataset and its version 1 from a file or a bundled dataset."""
    if args.bundled:
        if args.file or args.input or args.reference or args.format:
            raise CliError(
                "--bundled datasets come with their file, format and mapping; give FILE or --bundled"
            )
        entry = bundled(args.bundled)
        source = read_source(entry["path"])
        fmt, mapping = str(entry["format"]), dict(entry["mapping"])
        name = args.name or str(entry["name"])
        description = args.description if args.description is not None else str(entry.get("description", ""))
    else:
        if not args.file:
            raise CliError("give a FILE (or --bundled NAME; see promptopt datasets bundled)")
        if not args.input:
            raise CliError("--input COLUMN is required (repeat it for each template variable)")
        if not args.name:
            raise CliError("--name is required")
        source = read_source(args.file)
        fmt = format_of(source.path, args.format)
        mapping = {"inputs": args.input, "reference": args.reference}
        name, description = args.name, args.description or ""
    if args.max_bad_fraction is not None and not args.skip_bad_rows:
        raise CliError("--max-bad-fraction applies with --skip-bad-rows")
    body: dict[str, Any] = {"name": name, "format": fmt, "mapping": mapping, "description": description}
    if args.splits is not None:
        body["splits"] = parse_splits(args.splits)
    if args.split_seed is not None:
        body["split_seed"] = args.split_seed
    if args.skip_bad_rows:
        body["bad_row_policy"] = "skip_bad_rows"
        if args.max_bad_fraction is not None:
            body["max_bad_fraction"] = args.max_bad_fraction
    key = _idempotency_key(args)

    def hint(dataset_id: str) -> str:
        return (
            f"the dataset {dataset_id} exists without a file; add one with: promptopt datasets upload "
            f"{source.path} {dataset_id}"
        )

    return _send(
        args,
        ctx,
        source,
        request=lambda datasets, b: datasets.create(b, idempotency_key=key),
        body=body,
        retry_hint=hint,
    )


def upload_version(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets upload`: the next version of a dataset."""
    source = read_source(args.file)
    with ctx.client() as api:  # the dataset must exist, and take this kind of file
        dataset: dict[str, Any] = DatasetApi(api).get(args.dataset_id, versions=1).body or {}
    fmt = EXTENSION_FORMATS.get(source.path.suffix.lower())
    if fmt is not None and dataset.get("format") and fmt != dataset["format"]:
        raise CliError(
            f"{args.file} looks like {fmt} but {args.dataset_id} holds {dataset['format']} files; every "
            "version of a dataset has its format"
        )
    key = _idempotency_key(args)

    def hint(dataset_id: str) -> str:
        return f"run the upload again for a new URL: promptopt datasets upload {source.path} {dataset_id}"

    return _send(
        args,
        ctx,
        source,
        request=lambda datasets, b: datasets.create_version(args.dataset_id, b, idempotency_key=key),
        body={},
        retry_hint=hint,
    )


def get_dataset(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets get`: a dataset and its versions."""
    with ctx.client() as api:
        reply = DatasetApi(api).get(args.dataset_id, versions=args.versions)
    if ctx.json:
        output.emit_json(reply.body)
    else:
        show_dataset(reply.body or {})
    return EXIT_OK


def list_datasets(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets list`: one page, or every page with --all."""
    with ctx.client() as api:
        datasets = DatasetApi(api)
        page = collect(
            args, lambda token: datasets.list(name=args.name, page_size=args.page_size, page_token=token)
        )
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    items = page.get("items") or []
    if items:
        rows = [
            [
                d.get("dataset_id"),
                d.get("name"),
                d.get("format"),
                d.get("latest_version"),
                d.get("version_count"),
                output.timestamp(d.get("updated_at")),
                d.get("created_by"),
            ]
            for d in items
        ]
        header = ["DATASET_ID", "NAME", "FORMAT", "LATEST", "VERSIONS", "UPDATED", "CREATED_BY"]
        output.emit(output.table(header, rows))
    else:
        output.note("no datasets")
    command = ["promptopt", "datasets", "list"] + (["--name", args.name] if args.name is not None else [])
    more_hint(command, args, page.get("next_page_token"))
    return EXIT_OK


def sample_rows(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets sample`: a deterministic sample of rows."""
    with ctx.client() as api:
        reply = DatasetApi(api).sample(
            args.dataset_id, n=args.n, split=args.split, seed=args.seed, version=args.version
        )
    body: dict[str, Any] = reply.body or {}
    if ctx.json:
        output.emit_json(body)
        return EXIT_OK
    rows = body.get("rows") or []
    split = f", {body['split']} split" if body.get("split") else ""
    where = f"{body.get('dataset_id')} version {body.get('version')}"
    output.emit(f"{where}: {len(rows)} rows (seed {body.get('seed')}{split})")
    if rows:
        output.emit(rows_table(rows))
    return EXIT_OK


def page_rows(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets rows`: the rows of a version, page by page."""
    with ctx.client() as api:
        datasets = DatasetApi(api)
        page = collect(
            args,
            lambda token: datasets.rows(
                args.dataset_id,
                split=args.split,
                version=args.version,
                page_size=args.page_size,
                page_token=token,
            ),
        )
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    rows = page.get("items") or []
    output.emit(f"{page.get('dataset_id')} version {page.get('version')}: {len(rows)} rows")
    if rows:
        output.emit(rows_table(rows))
    command = ["promptopt", "datasets", "rows", args.dataset_id]
    for flag, value in (("--split", args.split), ("--version", args.version)):
        if value is not None:
            command += [flag, str(value)]
    more_hint(command, args, page.get("next_page_token"))
    return EXIT_OK


def delete_dataset(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets delete`: a dataset, its versions and files (needs --yes)."""
    if not args.yes:
        raise CliError(
            f"deleting {args.dataset_id} removes every version and its files for good; pass --yes to confirm"
        )
    with ctx.client() as api:
        DatasetApi(api).delete(args.dataset_id)
    if ctx.json:
        output.emit_json({"dataset_id": args.dataset_id, "deleted": True})
    else:
        output.emit(f"deleted {args.dataset_id}")
    return EXIT_OK


def list_bundled(args: argparse.Namespace, ctx: Context) -> int:
    """`datasets bundled`: the datasets shipped with the repository."""
    catalog = bundled_catalog()
    if ctx.json:
        output.emit_json({"directory": str(bundled_dir()), "datasets": catalog})
        return EXIT_OK
    rows = [[e.get("name"), e.get("rows"), e.get("suggested_metric"), e.get("description")] for e in catalog]
    output.emit(output.table(["NAME", "ROWS", "METRIC", "DESCRIPTION"], rows))
    output.note(f"from {bundled_dir()}; create one with: promptopt datasets create --bundled NAME --wait")
    return EXIT_OK
