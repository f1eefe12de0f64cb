"""The storage trigger's work: turn one finalized object into a ready (or failed) dataset version.

At-least-once and out-of-order delivery are the normal case:
- an object is identified by (bucket, name, generation); a dropped file's version is recorded in a
  claim document created in the same batch as the version, so a redelivery finds it;
- a version is taken for processing with an update-time precondition and a lease, so two
  deliveries never process it at once, and a crashed attempt is taken over after the lease;
- a version that is ready or failed is final: a redelivery changes nothing, a newer generation of
  the same object is refused (a new upload is a new version);
- outputs are deterministic (rows, splits, statistics depend only on the file and the seed), so a
  taken-over attempt rewrites the same files.

Data problems never raise: they end as a `failed` version with a reason, including ones nothing
foresaw (an unexpected ValueError, TypeError, RecursionError... while parsing). Only
infrastructure errors raise, so the event is redelivered; a version that stays unfinished anyway
is re-driven or failed by `promptopt.datasets.sweeper`.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from promptopt import logs
from promptopt.clients import storage_client
from promptopt.config import settings
from promptopt.datasets import records
from promptopt.datasets.files import IngestLimits, StatsAccumulator, assign_split, parse, row_key
from promptopt.datasets.files.canonical import dumps_row
from promptopt.datasets.files.infer import HEAD_BYTES, header_fields, mapping_for
from promptopt.datasets.files.layout import SPLITS, DroppedFile, Ignored, classify, split_object
from promptopt.datasets.files.models import ColumnMapping, Format
from promptopt.datasets.files.splits import SplitProportions

log = logging.getLogger(__name__)
OFFSET_EVERY = 1000  # a byte offset is kept every this many rows of a split (rows endpoint, batch chunks)
_IO_CHUNK = 1024 * 1024  # GCS reads and resumable-upload chunks: bounded memory per stream
# Errors that only a file's content can cause (storage errors are not among them: they retry).
_DATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, RecursionError)


class IngestBusy(RuntimeError):
    """Another delivery holds this version's lease; raising makes the trigger redeliver later."""


class FinalizedObject(BaseModel):
    """The fields of a storage "object finalized" event (the GCS object resource) that ingestion uses."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    bucket: str = Field(min_length=1)
    name: str = Field(min_length=1)
    generation: str = ""
    size: int = Field(0, ge=0)
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("generation", mode="before")
    @classmethod
    def _generation_text(cls, value: Any) -> str:  # GCS sends it as a string, some bridges as a number
        return "" if value is None else str(value)

    @field_validator("size", mode="before")
    @classmethod
    def _size_number(cls, value: Any) -> Any:  # a numeric string in the object resource
        return 0 if value in (None, "") else value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_text(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> FinalizedObject:
        """From the CloudEvent data (the GCS object resource)."""
        return cls.model_validate(data)


def handle_finalized(obj: FinalizedObject) -> str:
    """Ingest one finalized object; returns what happened (for logs and tests)."""
    logs.bind(object=f"gs://{obj.bucket}/{obj.name}")
    cfg = settings()
    if obj.bucket != cfg.datasets_bucket:
        return _ignored(obj, Ignored(f"bucket {obj.bucket!r} is not the datasets bucket"))
    kind = classify(obj.name)
    if isinstance(kind, Ignored):
        return _ignored(obj, kind)
    if isinstance(kind, DroppedFile):
        located = _register_drop(obj, kind)
        if located is None:
            return "ignored"
        tenant, dataset_id, version = located
    else:
        tenant, dataset_id, version = kind.tenant, kind.dataset_id, kind.version
    return _ingest_version(obj, tenant, dataset_id, version, kind.format)


def _ignored(obj: FinalizedObject, why: Ignored) -> str:
    level = logging.DEBUG if why.expected else logging.WARNING
    log.log(level, "object not ingested: %s", why.reason, extra={"object": f"gs://{obj.bucket}/{obj.name}"})
    return "ignored"


def _register_drop(obj: FinalizedObject, drop: DroppedFile) -> tuple[str, str, int] | None:
    """The (tenant, dataset, version) a dropped file becomes, creating them on first delivery."""
    tenant = drop.tenant
    # A file named after an existing dataset id adds a version to it; any other name is a dataset
    # of that name, the same one for every file dropped under it.
    by_id = drop.name if records.DATASET_ID_RE.fullmatch(drop.name) else None
    dataset_id = by_id or records.drop_dataset_id(tenant, drop.name)
    claim = records.claim_ref(tenant, dataset_id, f"{obj.bucket}/{obj.name}#{obj.generation}")
    earlier = claim.get()
    if earlier.exists:
        return tenant, dataset_id, int(earlier.get("version"))
    head = records.dataset_ref(tenant, dataset_id).get()
    existing = head.to_dict() if head.exists else None
    if existing is None and by_id:
        log.warning("dropped file names no existing dataset", extra={"object": obj.name})
        return None
    fmt = drop.format
    if existing is not None and existing.get("mapping_error") and obj.metadata.get("inputs"):
        _repair_mapping(tenant, dataset_id, obj, fmt)
    create = None
    if existing is None:
        mapping = mapping_for(_header(obj, fmt), obj.metadata)
        create = _drop_dataset(dataset_id, drop, mapping if isinstance(mapping, ColumnMapping) else None)
        if not isinstance(mapping, ColumnMapping):
            create["mapping_error"] = mapping

    def make(number: int, now: datetime) -> dict[str, Any]:
        return {
            "dataset_id": dataset_id,
            "version": number,
            "status": "pending",
            "origin": "bucket_drop",
            "format": fmt,
            "bucket": obj.bucket,
            "object": obj.name,
            "source": f"gs://{obj.bucket}/{obj.name}#{obj.generation}",
            "generation": None,
            "created_at": now,
            "updated_at": now,
            "created_by": "bucket-drop",
        }

    try:
        allocated = records.allocate_version(tenant, dataset_id, make, create_dataset=create, claim=claim)
    except records.AlreadyCreated:  # the dataset appeared meanwhile (another file under this name)
        allocated = records.allocate_version(tenant, dataset_id, make, claim=claim)
    log.info("dropped file registered", extra={"dataset_id": dataset_id, "version": allocated.version})
    return tenant, dataset_id, allocated.version


def _repair_mapping(tenant: str, dataset_id: str, obj: FinalizedObject, fmt: str) -> None:
    """A dataset whose first drop had no usable mapping takes one from a later file's metadata."""
    from google.cloud.firestore import DELETE_FIELD

    mapping = mapping_for(_header(obj, fmt), obj.metadata)
    if isinstance(mapping, ColumnMapping):
        records.dataset_ref(tenant, dataset_id).update(
            {"mapping": mapping.model_dump(), "mapping_error": DELETE_FIELD}
        )


def _drop_dataset(dataset_id: str, drop: DroppedFile, mapping: ColumnMapping | None) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "name": drop.name,
        "description": "created from a file dropped into the bucket",
        "format": drop.format,
        "mapping": (mapping or ColumnMapping(inputs=["input"])).model_dump(),
        "splits": SplitProportions().model_dump(),
        "split_seed": 0,
        "bad_row_policy": "reject_file",
        "max_bad_fraction": 0.05,
        "created_by": "bucket-drop",
        "latest_version": None,
    }


def _header(obj: FinalizedObject, fmt: str) -> list[str]:
    blob = storage_client().bucket(obj.bucket).blob(obj.name, generation=_generation(obj))
    try:
        head = blob.download_as_bytes(start=0, end=HEAD_BYTES - 1)
    except gexc.NotFound:
        return []
    return header_fields(head, fmt)  # type: ignore[arg-type]


def _generation(obj: FinalizedObject) -> int | None:
    return int(obj.generation) if obj.generation.isdigit() else None


# -- one version ------------------------------------------------------------------------------


def _ingest_version(obj: FinalizedObject, tenant: str, dataset_id: str, version: int, fmt: Format) -> str:
    ref = records.version_ref(tenant, dataset_id, version)
    head = records.dataset_ref(tenant, dataset_id).get()
    if not head.exists or (head.to_dict() or {}).get("deleting"):
        log.warning("object for a dataset that does not exist (deleted?)", extra={"object": obj.name})
        return "ignored"
    dataset = head.to_dict() or {}
    claimed = _claim(ref, obj)
    if claimed is None:
        return "duplicate"
    claim_time, attempt = claimed
    if dataset.get("mapping_error"):
        return _fail(ref, claim_time, "no_mapping", dataset["mapping_error"])
    try:
        return _process(obj, tenant, dataset_id, version, fmt, dataset, ref, claim_time, attempt)
    except BaseException:
        _release(ref, claim_time)  # let the redelivery take over now rather than after the lease
        raise


def _release(ref: Any, claim_time: Any) -> None:
    try:
        ref.update({"lease_until": None}, option=ref._client.write_option(last_update_time=claim_time))
    except gexc.GoogleAPIError:
        log.warning("could not release the ingest lease; a redelivery waits for it to expire")


def _claim(ref: Any, obj: FinalizedObject) -> tuple[Any, int] | None:
    """Take the version for this object, or None when there is nothing to do (final/duplicate)."""
    for _attempt in range(10):
        snapshot = ref.get()
        if not snapshot.exists:
            log.warning("object for a version that does not exist", extra={"object": obj.name})
            return None
        data = snapshot.to_dict() or {}
        status, generation = data.get("status"), data.get("generation")
        now = datetime.now(UTC)
        if status in ("ready", "failed"):
            if generation != obj.generation:
                log.warning(
                    "a finished version's file was written again; versions are immutable, upload a new "
                    "version instead",
                    extra={"object": obj.name, "generation": obj.generation, "ingested": generation},
                )
            return None
        if status == "processing":
            lease = data.get("lease_until")
            if generation != obj.generation:
                log.warning("another generation is being ingested", extra={"object": obj.name})
                return None
            if lease is not None and lease > now:
                raise IngestBusy(f"{obj.name} is being ingested by another delivery until {lease}")
        attempt = int(data.get("attempt") or 0) + 1
        try:
            result = ref.update(
                {
                    "status": "processing",
                    "generation": obj.generation,
                    "bytes": obj.size,
                    "attempt": attempt,
                    "lease_until": now + timedelta(seconds=settings().ingest_lease_s),
                    "updated_at": now,
                },
                option=ref._client.write_option(last_update_time=snapshot.update_time),
            )
        except (gexc.FailedPrecondition, gexc.Aborted):
            continue  # another delivery moved it first: look again
        return result.update_time, attempt
    raise IngestBusy(f"could not claim {obj.name} under contention")


def _limits(dataset: dict[str, Any]) -> IngestLimits:
    cfg = settings()
    return IngestLimits(
        max_rows=cfg.dataset_max_rows,
        max_bytes=cfg.dataset_max_bytes,
        bad_row_policy=dataset.get("bad_row_policy", "reject_file"),
        max_bad_fraction=float(dataset.get("max_bad_fraction", 0.05)),
    )


def _process(
    obj: FinalizedObject,
    tenant: str,
    dataset_id: str,
    version: int,
    fmt: Format,
    dataset: dict[str, Any],
    ref: Any,
    claim_time: Any,
    attempt: int,
) -> str:
    limits = _limits(dataset)
    if obj.size > limits.max_bytes:
        return _fail(
            ref,
            claim_time,
            "file_too_large",
            f"the file is {obj.size} bytes, above the limit of {limits.max_bytes} bytes; split it into "
            "smaller files",
        )
    bucket = storage_client().bucket(obj.bucket)
    source = bucket.blob(obj.name, generation=_generation(obj))
    mapping = ColumnMapping.model_validate(dataset["mapping"])
    proportions = SplitProportions.model_validate(dataset.get("splits") or {})
    seed = int(dataset.get("split_seed") or 0)
    outputs = {split: bucket.blob(split_object(tenant, dataset_id, version, split)) for split in SPLITS}
    try:
        reader = source.open("rb", chunk_size=_IO_CHUNK)
    except gexc.NotFound:
        return _fail(ref, claim_time, "source_missing", "the uploaded file is gone; upload it again")
    writers = {
        split: blob.open("wb", chunk_size=_IO_CHUNK, ignore_flush=True) for split, blob in outputs.items()
    }
    stats = StatsAccumulator()
    counts = dict.fromkeys(SPLITS, 0)
    sizes = dict.fromkeys(SPLITS, 0)
    offsets: dict[str, list[int]] = {split: [] for split in SPLITS}
    unforeseen: BaseException | None = None
    with reader:
        parsed = parse(reader, fmt=fmt, mapping=mapping, limits=limits)
        try:
            for row in parsed:
                split = assign_split(row_key(row), seed, proportions)
                if counts[split] % OFFSET_EVERY == 0:
                    offsets[split].append(sizes[split])
                line = dumps_row(row)
                writers[split].write(line)
                counts[split] += 1
                sizes[split] += len(line)
                stats.add(row, split)
        except _DATA_ERRORS as exc:  # a row nothing foresaw: the data's problem, never retried
            log.exception("unexpected error while ingesting a row")
            unforeseen = exc
        finally:
            for writer in writers.values():
                writer.close()
    if unforeseen is not None:
        _delete_quietly(outputs.values())
        return _fail(
            ref,
            claim_time,
            "invalid_file",
            f"the file could not be ingested ({type(unforeseen).__name__} after {sum(counts.values())} "
            "rows); check the file's format and content",
        )
    outcome = parsed.outcome
    if outcome.failed:
        _delete_quietly(outputs.values())
        return _fail(
            ref,
            claim_time,
            "invalid_file",
            outcome.failure_reason or "the file is not valid",
            extra={
                "rows_ok": outcome.rows_ok,
                "rows_bad": outcome.rows_bad,
                "bad_rows": [b.model_dump() for b in outcome.bad_rows],
            },
        )
    now = datetime.now(UTC)
    try:
        ref.update(
            {
                "status": "ready",
                "ready_at": now,
                "updated_at": now,
                "rows_ok": outcome.rows_ok,
                "rows_bad": outcome.rows_bad,
                "bad_rows": [b.model_dump() for b in outcome.bad_rows],
                "stats": stats.result().model_dump(mode="json"),
                "split_counts": counts,
                "split_bytes": sizes,
                "offsets": offsets,
                "offset_every": OFFSET_EVERY,
                "lease_until": None,
            },
            option=ref._client.write_option(last_update_time=claim_time),
        )
    except gexc.NotFound:  # the dataset was deleted while we worked: leave nothing behind
        _delete_quietly(outputs.values())
        return "ignored"
    except gexc.FailedPrecondition:
        log.warning("lost the version's lease to another delivery", extra={"attempt": attempt})
        return "superseded"
    records.raise_latest(tenant, dataset_id, version)
    log.info(
        "dataset version ready", extra={"dataset_id": dataset_id, "version": version, "rows": outcome.rows_ok}
    )
    return "ready"


def _fail(ref: Any, claim_time: Any, code: str, reason: str, extra: dict[str, Any] | None = None) -> str:
    now = datetime.now(UTC)
    try:
        ref.update(
            {
                "status": "failed",
                "failure": {"code": code, "reason": reason},
                "updated_at": now,
                "lease_until": None,
                **(extra or {}),
            },
            option=ref._client.write_option(last_update_time=claim_time),
        )
    except (gexc.NotFound, gexc.FailedPrecondition):
        return "superseded"
    log.info("dataset version failed", extra={"code": code, "reason": reason})
    return "failed"


def _delete_quietly(blobs: Any) -> None:
    for blob in blobs:
        with contextlib.suppress(gexc.NotFound):
            blob.delete()


def expire(obj: FinalizedObject) -> str:
    """The trigger gave up on this object (too old to retry): an unfinished version fails with a reason.

    Without this, an object whose every delivery failed would leave its version `pending` or
    `processing` forever.
    """
    kind = classify(obj.name)
    if obj.bucket != settings().datasets_bucket or isinstance(kind, Ignored | DroppedFile):
        return "ignored"  # a dropped file's version is found by its claim; the sweeper finishes it
    ref = records.version_ref(kind.tenant, kind.dataset_id, kind.version)
    snapshot = ref.get()
    status = (snapshot.to_dict() or {}).get("status") if snapshot.exists else None
    if status not in ("pending", "processing"):
        return "final"
    return _fail(
        ref,
        snapshot.update_time,
        "ingest_gave_up",
        "the file could not be ingested before its upload event expired; upload it again as a new version",
    )
