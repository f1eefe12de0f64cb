"""The `datasets` group's commands and their arguments."""

from __future__ import annotations

import argparse

from promptopt.cli import argtypes, output
from promptopt.cli.core.commands import Groups, command_group
from promptopt.cli.core.paging import add_paging
from promptopt.cli.datasets import commands as run
from promptopt.cli.datasets.files import INLINE_MAX_BYTES, SPLITS
from promptopt.cli.datasets.waiting import DEFAULT_WAIT_TIMEOUT_S


def _add_sending(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", action="store_true", help="wait until the version is ready or failed (exit 1 if failed)"
    )
    parser.add_argument(
        "--wait-timeout",
        type=argtypes.positive_float,
        default=DEFAULT_WAIT_TIMEOUT_S,
        metavar="S",
        help=f"with --wait: give up after S seconds (default {DEFAULT_WAIT_TIMEOUT_S:g}, exit 1)",
    )
    parser.add_argument(
        "--via",
        choices=("auto", "inline", "url"),
        default="auto",
        help=f"send the file inside the request (inline, up to 5 MB) or PUT it to a signed URL (url); "
        f"default auto: inline up to {output.human_bytes(INLINE_MAX_BYTES)}",
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="K",
        help="use this Idempotency-Key instead of a random one (to retry the command from a script)",
    )


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `datasets` group and its commands to the top-level subparsers."""
    command = command_group(groups, common, "datasets", help="upload, inspect, sample and delete datasets")

    create = command(
        "create",
        run.create_dataset,
        help="create a dataset from a CSV or JSONL file (version 1)",
        description="Create a dataset from a CSV (header row) or JSONL file, or from a dataset bundled with "
        "the repository (--bundled). Files up to 1 MiB go inline; larger ones are PUT to a signed "
        "Cloud Storage URL with a progress bar. Ingestion runs after the upload; --wait follows it. With "
        "--json, prints the API's answer (with --wait: the same document with the final dataset and "
        "version).",
    )
    create.add_argument("file", nargs="?", metavar="FILE", help="the .csv, .tsv, .jsonl or .ndjson file")
    create.add_argument(
        "--bundled", metavar="NAME", help="a bundled dataset, e.g. bbh/boolean_expressions (see `bundled`)"
    )
    create.add_argument("--name", help="the dataset's name (default with --bundled: the bundled name)")
    create.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file's extension")
    create.add_argument(
        "--input",
        action="append",
        metavar="COLUMN",
        help="a column (CSV) or field (JSONL) that fills the template variable of the same name; repeatable",
    )
    create.add_argument(
        "--reference", metavar="COLUMN", help="the column or field holding the expected answer"
    )
    create.add_argument("--description", metavar="TEXT")
    create.add_argument(
        "--splits", metavar="T,V,T", help="train,validation,test shares summing to 1 (default 0.6,0.2,0.2)"
    )
    create.add_argument(
        "--split-seed", type=argtypes.seed, metavar="N", help="seed of the split assignment (default 0)"
    )
    create.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="ingest the good rows and report the bad ones (default: any bad row fails the file)",
    )
    create.add_argument(
        "--max-bad-fraction",
        type=argtypes.fraction,
        metavar="F",
        help="with --skip-bad-rows: fail the file above this share of bad rows (default 0.05)",
    )
    _add_sending(create)

    upload = command(
        "upload",
        run.upload_version,
        help="upload a new version of a dataset",
        description="Upload a new file as the next version of a dataset (same format and mapping).",
    )
    upload.add_argument("file", metavar="FILE", help="the new file")
    upload.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    _add_sending(upload)

    get = command("get", run.get_dataset, help="show a dataset and its versions")
    get.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    get.add_argument(
        "--versions", type=int, metavar="N", help="how many of the newest versions to show (API default 20)"
    )

    listing = command("list", run.list_datasets, help="list datasets, newest first")
    listing.add_argument("--name", help="only datasets with exactly this name")
    add_paging(listing, "datasets")

    sample = command("sample", run.sample_rows, help="a deterministic sample of rows (same seed, same rows)")
    sample.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    sample.add_argument(
        "-n", type=argtypes.positive_int, default=10, metavar="N", help="rows (default 10, max 1000)"
    )
    sample.add_argument("--split", choices=SPLITS, help="only this split")
    sample.add_argument(
        "--seed", type=argtypes.seed, default=0, metavar="S", help="sampling seed (default 0)"
    )
    sample.add_argument(
        "--version", type=argtypes.positive_int, metavar="N", help="default: the newest ready version"
    )

    rows = command("rows", run.page_rows, help="page through the rows of a version")
    rows.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    rows.add_argument("--split", choices=SPLITS, help="only this split")
    rows.add_argument(
        "--version", type=argtypes.positive_int, metavar="N", help="default: the newest ready version"
    )
    add_paging(rows, "rows")

    delete = command("delete", run.delete_dataset, help="delete a dataset, its versions and files (admin)")
    delete.add_argument("dataset_id", metavar="DATASET_ID", help="dataset id (ds_...)")
    delete.add_argument("--yes", action="store_true", help="confirm the deletion")

    command("bundled", run.list_bundled, help="list the datasets bundled with the repository")
