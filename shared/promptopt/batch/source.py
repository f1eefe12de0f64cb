"""Where a job's rows come from: inline rows (stored per chunk at creation) or a dataset version.

A dataset job pins the version it resolved, so a newer upload never changes a running job. The
dataset room (`promptopt.datasets.rows`) is imported lazily: inline jobs never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.batch import paths
from promptopt.errors import InvalidRequest

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

    from promptopt.batch.models import BatchCreate


class RowInput(NamedTuple):
    """One row to run: the template's variables and, for evaluation, its reference."""

    row: int
    inputs: dict[str, str]
    reference: str | None = None
    dataset_row: int | None = None
    split: str | None = None


class ResolvedSource(NamedTuple):
    """A request's rows as the job records them."""

    info: dict[str, Any]
    total_rows: int
    has_references: bool
    inline: list[dict[str, Any]] | None = None


def resolve(*, tenant: str, body: BatchCreate, max_rows: int) -> ResolvedSource:
    """Pin the request's rows: inline rows as given, or a ready dataset version and its row count."""
    if body.rows is not None:
        inline = [{"inputs": dict(r.inputs), "reference": r.reference} for r in body.rows]
        return ResolvedSource(
            info={"type": "inline", "dataset_id": None, "dataset_version": None, "split": None},
            total_rows=len(inline),
            has_references=all(r["reference"] is not None for r in inline),
            inline=inline,
        )
    if body.dataset is None:  # the model validator makes this unreachable
        raise InvalidRequest("give dataset or rows", code="validation_failed")
    from promptopt.datasets import rows as dataset_rows

    ready = dataset_rows.resolve_version(
        tenant=tenant, dataset_id=body.dataset.dataset_id, version=body.dataset.version
    )
    split = body.dataset.split
    total = sum(ready.split_counts.values()) if split is None else ready.split_counts.get(split, 0)
    if total == 0:
        where = f"split {split!r} of " if split else ""
        raise InvalidRequest(
            f"{where}version {ready.version} of dataset {ready.dataset_id!r} has no rows", code="empty_source"
        )
    if total > max_rows:
        raise InvalidRequest(
            f"the source holds {total} rows; a job holds at most {max_rows} (choose a split)",
            code="too_many_rows",
        )
    return ResolvedSource(
        info={
            "type": "dataset",
            "dataset_id": ready.dataset_id,
            "dataset_version": ready.version,
            "split": split,
        },
        total_rows=total,
        has_references=ready.reference_field is not None,
    )


def inline_documents(inline: list[dict[str, Any]], chunk_size: int) -> list[dict[str, Any]]:
    """The inputs documents of an inline job, one per chunk."""
    return [{"rows": inline[start : start + chunk_size]} for start in range(0, len(inline), chunk_size)]


def inline_rows(bounds: range, stored: dict[str, Any]) -> list[RowInput]:
    """The rows of an inline chunk from its inputs document (`inline_documents`)."""
    return [
        RowInput(row=row, inputs=dict(item.get("inputs") or {}), reference=item.get("reference"))
        for row, item in zip(bounds, stored.get("rows") or [], strict=False)
    ]


def chunk_rows(*, tenant: str, job: DocumentReference, data: dict[str, Any], chunk: int) -> list[RowInput]:
    """The rows of one chunk, in row order."""
    from promptopt.batch.chunks import chunk_bounds  # the enqueue code, only where chunks are read

    bounds = chunk_bounds(chunk, int(data["chunk_size"]), int(data["total_rows"]))
    source = data["source"]
    if source["type"] == "inline":
        return inline_rows(bounds, paths.inputs_ref(job, chunk).get().to_dict() or {})
    from promptopt.datasets import rows as dataset_rows

    rows = dataset_rows.read_rows(
        tenant=tenant,
        dataset_id=source["dataset_id"],
        version=int(source["dataset_version"]),
        split=source.get("split"),
        start=bounds.start,
        count=len(bounds),
    )
    return [
        RowInput(row=row, inputs=dict(r.inputs), reference=r.reference, dataset_row=r.row, split=r.split)
        for row, r in zip(bounds, rows, strict=False)
    ]
