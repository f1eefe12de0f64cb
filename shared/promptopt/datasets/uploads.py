"""Creating datasets and versions through the API: a record, then the file (inline or signed URL).

Either way the file lands at `tenants/{t}/datasets/{id}/v{n}/source.{ext}` and the storage
trigger ingests it, so inline content, signed uploads and bucket drops share one ingest path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import datetime
from typing import Any

from promptopt import storage_rest
from promptopt.auth import Principal
from promptopt.config import settings
from promptopt.datasets import records
from promptopt.datasets.files.layout import source_object
from promptopt.datasets.files.models import Format
from promptopt.datasets.models import DEFAULT_UPLOAD_MAX_BYTES, DatasetCreate, DatasetVersionCreate
from promptopt.datasets.views import dataset_dict, version_dict
from promptopt.errors import ApiError

log = logging.getLogger(__name__)
CONTENT_TYPES: dict[str, str] = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
# Storing an inline file (at most 5 MiB), retries included; the request's own limit is longer.
INLINE_UPLOAD_TIMEOUT_S = 20.0


class StorageUnavailable(ApiError):
    """Cloud Storage refused or failed the write; the request can be retried."""

    status = 503
    title = "Service Unavailable"


def new_dataset_id(tenant: str, body: DatasetCreate, idempotency_key: str | None) -> str:
    """Random, or derived from the Idempotency-Key and body so a replayed create collides."""
    if idempotency_key is None:
        return "ds_" + secrets.token_hex(10)
    seed = json.dumps([tenant, idempotency_key, body.model_dump(mode="json")], sort_keys=True)
    return "ds_" + hashlib.sha256(seed.encode()).hexdigest()[:20]


def _pending_version(tenant: str, dataset_id: str, fmt: Format, origin: str, principal: Principal) -> Any:
    bucket = settings().datasets_bucket

    def make(number: int, now: datetime) -> dict[str, Any]:
        name = source_object(tenant, dataset_id, number, fmt)
        return {
            "dataset_id": dataset_id,
            "version": number,
            "status": "pending",
            "origin": origin,
            "format": fmt,
            "bucket": bucket,
            "object": name,
            "source": f"gs://{bucket}/{name}",
            "generation": None,
            "created_at": now,
            "updated_at": now,
            "created_by": principal.subject,
        }

    return make


def create_dataset(
    *, principal: Principal, body: DatasetCreate, idempotency_key: str | None
) -> dict[str, Any]:
    """Create the dataset with its version 1 and either store the inline file or sign an upload.

    Answers DatasetCreated's fields as a plain dict (`created_view`).
    """
    tenant = principal.tenant
    dataset_id = new_dataset_id(tenant, body, idempotency_key)
    inline = body.inline_bytes()
    head = {
        "dataset_id": dataset_id,
        "name": body.name,
        "description": body.description,
        "format": body.format,
        "mapping": body.mapping.model_dump(),
        "splits": body.splits.model_dump(),
        "split_seed": body.split_seed,
        "bad_row_policy": body.bad_row_policy,
        "max_bad_fraction": body.max_bad_fraction,
        "created_by": principal.subject,
        "latest_version": None,
    }
    origin = "inline" if inline is not None else "signed_url"
    make = _pending_version(tenant, dataset_id, body.format, origin, principal)
    try:
        allocated = records.allocate_version(tenant, dataset_id, make, create_dataset=head)
    except records.AlreadyCreated:  # a replay of this very request (same key and body)
        return _respond(principal, dataset_id, 1, inline, body.upload_max_bytes)  # what it made
    return _respond(principal, dataset_id, 1, inline, body.upload_max_bytes, allocated)


def create_version(
    *, principal: Principal, dataset_id: str, body: DatasetVersionCreate, idempotency_key: str | None
) -> dict[str, Any]:
    """Add the next version of an existing dataset (once per Idempotency-Key), as `create_dataset`."""
    tenant = principal.tenant
    data = records.load_dataset(tenant, dataset_id).to_dict() or {}
    inline = body.inline_bytes()
    origin = "inline" if inline is not None else "signed_url"
    claim = None
    if idempotency_key is not None:
        claim = records.claim_ref(tenant, dataset_id, f"request\0{idempotency_key}")
    make = _pending_version(tenant, dataset_id, data["format"], origin, principal)
    allocated = records.allocate_version(tenant, dataset_id, make, claim=claim)
    return _respond(principal, dataset_id, allocated.version, inline, body.upload_max_bytes, allocated)


def created_view(
    head: dict[str, Any],
    versions: list[dict[str, Any]],
    version: dict[str, Any],
    upload: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a create answers: DatasetCreated's fields as a plain dict.

    The create functions build no response schema at cold start; tests/unit/test_views.py ties the
    dict to the model.
    """
    return {"dataset": dataset_dict(head, versions), "version": version_dict(version), "upload": upload}


def _respond(
    principal: Principal,
    dataset_id: str,
    number: int,
    inline: bytes | None,
    upload_max: int | None,
    allocated: records.Allocated | None = None,
) -> dict[str, Any]:
    """Store the inline file or sign its upload, and answer the dataset with the new version.

    What this request's own commit wrote (`allocated.created`) is answered as written, without
    reading it back: nothing but the ingest this answer starts changes it, and a client follows the
    ingest with GET. A replay, or a claim an earlier delivery made, reads what exists.
    """
    tenant = principal.tenant
    written = allocated if allocated is not None and allocated.created else None
    if written is not None and written.version_doc is not None:
        version = written.version_doc
    else:
        version = records.load_version(tenant, dataset_id, number)
    upload = None
    if version["status"] == "pending":
        if inline is not None:
            _store_inline(version, inline)
        else:
            upload = _upload_target(version, upload_max)
    if written is not None and written.head_doc is not None:
        head = written.head_doc
    else:
        head = records.load_dataset(tenant, dataset_id).to_dict() or {}
    if written is not None and number == 1:
        versions = [version]  # a dataset this request created has this one version
    else:
        versions = records.newest_versions(tenant, dataset_id, 20)
    return created_view(head, versions, version, upload)


def _store_inline(version: dict[str, Any], content: bytes) -> None:
    try:
        # Create-only: a replayed request must not write a second generation of the same version
        # (a 412 means an earlier delivery of this request stored it already).
        storage_rest.create_object(
            version["bucket"],
            version["object"],
            content,
            content_type=CONTENT_TYPES[version["format"]],
            timeout_s=INLINE_UPLOAD_TIMEOUT_S,
        )
    except storage_rest.StorageError as exc:
        log.error("inline dataset upload failed", extra={"object": version["object"], "error": str(exc)})
        raise StorageUnavailable(
            "the file could not be stored; retry the request with the same Idempotency-Key",
            code="storage_unavailable",
            retry_after_s=5,
        ) from None


def _upload_target(version: dict[str, Any], upload_max: int | None) -> dict[str, Any]:
    """UploadTarget's fields, as a plain dict."""
    from promptopt.signed_urls import signed_put_url

    cfg = settings()
    max_bytes = min(upload_max or DEFAULT_UPLOAD_MAX_BYTES, cfg.dataset_max_bytes)
    signed = signed_put_url(
        bucket=version["bucket"],
        object_name=version["object"],
        content_type=CONTENT_TYPES[version["format"]],
        max_bytes=max_bytes,
        ttl_s=cfg.signed_url_ttl_s,
    )
    return upload_view(signed.url, dict(signed.headers), signed.expires_at, max_bytes, version["source"])


def upload_view(
    url: str, headers: dict[str, str], expires_at: datetime, max_bytes: int, source: str
) -> dict[str, Any]:
    """Where to PUT the file: UploadTarget's fields, as a plain dict."""
    return {
        "url": url,
        "method": "PUT",
        "headers": headers,
        "expires_at": expires_at,
        "max_bytes": max_bytes,
        "object": source,
    }
