"""No state without an exit: dataset versions left pending or processing are ingested or failed.

A version waits for the storage trigger, which is at-least-once but can give up for good (its
retries spent, an event lost), and an upload URL can simply go unused. A scheduler tick calls
`sweep_stuck`:

    pending, file present         the finalized event was lost: ingest it now (same code path)
    pending, no file, URL expired nothing will ever arrive: failed (`upload_missing`)
    processing, lease long gone   the delivery that held it died and was not retried: ingest again

Each re-drive is counted on the version (`sweep_tries`); after `max_tries` the version fails with
`ingest_stuck`. Ingestion is idempotent (claims, leases, deterministic outputs), so a re-drive
racing a late real delivery is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from promptopt.clients import firestore_client, storage_client
from promptopt.config import settings
from promptopt.datasets import ingest
from promptopt.store.paths import tenant_collection

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)
MAX_TRIES = 3
_UNFINISHED = ["pending", "processing"]


@dataclass
class SweepReport:
    """What one sweep did (version paths `dataset_id/vN`)."""

    checked: int = 0
    redriven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _candidates(tenant: str | None, limit: int) -> list[Any]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    if tenant:
        datasets = tenant_collection(tenant, "datasets").select([]).stream()
        found: list[Any] = []
        for dataset in datasets:
            query = dataset.reference.collection("versions").where(
                filter=FieldFilter("status", "in", _UNFINISHED)
            )
            found += list(query.limit(limit).stream())
        return found[:limit]
    query = (
        firestore_client().collection_group("versions").where(filter=FieldFilter("status", "in", _UNFINISHED))
    )
    return list(query.limit(limit).stream())


def sweep_stuck(
    *,
    now: datetime | None = None,
    lease: timedelta = LEASE,
    max_tries: int = MAX_TRIES,
    limit: int = 200,
    tenant: str | None = None,
) -> SweepReport:
    """Re-drive or fail dataset versions that made no progress for `lease` (see the module doc)."""
    at = now or datetime.now(UTC)
    report = SweepReport()
    for snapshot in _candidates(tenant, limit):
        data = snapshot.to_dict() or {}
        if "dataset_id" not in data:  # another room's `versions` (prompts): not ours
            continue
        report.checked += 1
        label = f"{data['dataset_id']}/v{data.get('version')}"
        try:
            outcome = _sweep_version(snapshot, data, at, lease, max_tries)
        except Exception:
            log.exception("sweeping dataset version %s failed", label)
            outcome = "error"
        if outcome == "redriven":
            report.redriven.append(label)
        elif outcome == "failed":
            report.failed.append(label)
    return report


def _sweep_version(
    snapshot: Any, data: dict[str, Any], at: datetime, lease: timedelta, max_tries: int
) -> str:
    status = data.get("status")
    updated = data.get("updated_at") or data.get("created_at") or at
    if status == "processing":
        lease_until = data.get("lease_until") or updated
        if lease_until + lease > at:
            return "waiting"
    elif updated + lease > at:
        return "waiting"
    blob = _object(data)
    if blob is None:
        expires = (data.get("created_at") or at) + timedelta(seconds=settings().signed_url_ttl_s)
        if status == "pending" and expires + lease > at:
            return "waiting"  # the URL may still be used
        return _fail(snapshot, "upload_missing", "no file arrived for this version; upload a new version")
    tries = int(data.get("sweep_tries") or 0)
    if tries >= max_tries:
        return _fail(
            snapshot,
            "ingest_stuck",
            f"ingestion did not finish after {tries} re-drives; upload the file again as a new version",
        )
    snapshot.reference.update({"sweep_tries": tries + 1})
    log.warning(
        "dataset version %s is %s without progress: ingesting it again", snapshot.reference.path, status
    )
    obj = ingest.FinalizedObject(
        bucket=blob.bucket.name,
        name=blob.name,
        generation=str(blob.generation),
        size=int(blob.size or 0),
        metadata=dict(blob.metadata or {}),
    )
    if status == "processing":  # the holder is gone: let this delivery take the version now
        snapshot.reference.update({"lease_until": None})
    ingest.handle_finalized(obj)
    return "redriven"


def _object(data: dict[str, Any]) -> Any:
    """The version's source object (the generation it was dropped as, if recorded), or None."""
    source = str(data.get("source") or "")
    generation = source.rpartition("#")[2] if "#" in source else data.get("generation")
    bucket = storage_client().bucket(str(data.get("bucket")))
    blob = bucket.get_blob(str(data.get("object")))
    if blob is None:
        return None
    if generation and str(blob.generation) != str(generation):
        return None  # replaced since: the generation this version is for is gone
    return blob


def _fail(snapshot: Any, code: str, reason: str) -> str:
    from google.api_core import exceptions as gexc

    ref = snapshot.reference
    try:
        ref.update(
            {
                "status": "failed",
                "failure": {"code": code, "reason": reason},
                "updated_at": datetime.now(UTC),
                "lease_until": None,
            },
            option=ref._client.write_option(last_update_time=snapshot.update_time),
        )
    except (gexc.FailedPrecondition, gexc.NotFound):
        return "moved"  # it changed meanwhile: judged again next time
    log.error("dataset version %s failed: %s", ref.path, code)
    return "failed"
