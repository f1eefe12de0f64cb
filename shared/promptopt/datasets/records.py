"""Dataset and version documents in Firestore, and the one way version numbers are allocated.

    tenants/{t}/datasets/{dataset_id}                 the dataset (settings, latest ready version)
    tenants/{t}/datasets/{dataset_id}/versions/{n}    one version (status, stats, split offsets)
    tenants/{t}/datasets/{dataset_id}/claims/{hash}   which version a dropped file (or a keyed
                                                      request) became

Version numbers come from `version_count` on the dataset document, advanced with an update-time
precondition in the same batch that creates the version (and, for a drop, the drop record), so
a number is never handed out twice and a redelivered drop finds its version instead of a new one.
The emulator times out concurrent transactions on one document; a conditional batch does not.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from google.api_core import exceptions as gexc

from promptopt.datasets.files.layout import DATASET_ID_RE
from promptopt.errors import NotFound
from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference, DocumentSnapshot

log = logging.getLogger(__name__)
COLLECTION = "datasets"
_ALLOCATE_ATTEMPTS = 20


def dataset_ref(tenant: str, dataset_id: str) -> DocumentReference:
    """The dataset document."""
    return tenant_collection(tenant, COLLECTION).document(dataset_id)


def version_ref(tenant: str, dataset_id: str, version: int) -> DocumentReference:
    """One version's document (ids sort numerically)."""
    return dataset_ref(tenant, dataset_id).collection("versions").document(f"{version:08d}")


def claim_ref(tenant: str, dataset_id: str, what: str) -> DocumentReference:
    """The record that `what` became a version, so a redelivery finds it instead of making another.

    `what` is a dropped file's `bucket/name#generation`, or a request's Idempotency-Key.
    """
    digest = hashlib.sha256(what.encode()).hexdigest()[:40]
    return dataset_ref(tenant, dataset_id).collection("claims").document(digest)


def drop_dataset_id(tenant: str, name: str) -> str:
    """The id of the dataset a dropped file named `name` feeds: the same name, the same dataset."""
    return "ds_" + hashlib.sha256(f"drop\0{tenant}\0{name}".encode()).hexdigest()[:20]


def load_dataset(tenant: str, dataset_id: str) -> DocumentSnapshot:
    """The dataset's snapshot; 404 for a malformed id, a missing or a deleting dataset."""
    snapshot = dataset_ref(tenant, dataset_id).get() if DATASET_ID_RE.fullmatch(dataset_id) else None
    if snapshot is None or not snapshot.exists or (snapshot.to_dict() or {}).get("deleting"):
        raise NotFound(f"no dataset {dataset_id!r}", code="dataset_not_found")
    return snapshot


def load_version(tenant: str, dataset_id: str, version: int) -> dict[str, Any]:
    """One version's document as a dict; 404 when absent."""
    snapshot = version_ref(tenant, dataset_id, version).get()
    if not snapshot.exists:
        raise NotFound(f"dataset {dataset_id!r} has no version {version}", code="version_not_found")
    return snapshot.to_dict() or {}


def newest_versions(tenant: str, dataset_id: str, count: int) -> list[dict[str, Any]]:
    """The newest `count` version documents, newest first."""
    if count <= 0:
        return []
    from google.cloud.firestore import Query

    query = (
        dataset_ref(tenant, dataset_id)
        .collection("versions")
        .order_by("version", direction=Query.DESCENDING)
        .limit(count)
    )
    return [snapshot.to_dict() or {} for snapshot in query.stream()]


class AlreadyCreated(Exception):
    """`allocate_version` was asked to create a dataset that already exists."""


class Allocated(NamedTuple):
    """The outcome of `allocate_version`: the number, and whether this call created it.

    When it did, also the version and dataset documents exactly as its commit wrote them, so that
    the create can answer without reading them back.
    """

    version: int
    created: bool
    version_doc: dict[str, Any] | None = None
    head_doc: dict[str, Any] | None = None


def allocate_version(
    tenant: str,
    dataset_id: str,
    make_version: Callable[[int, datetime], dict[str, Any]],
    *,
    create_dataset: dict[str, Any] | None = None,
    claim: DocumentReference | None = None,
) -> Allocated:
    """Create the next version of a dataset (and the dataset itself if `create_dataset` is given).

    Args:
        tenant: the owning tenant.
        dataset_id: the dataset to add a version to (or to create).
        make_version: builds the version document for number n at time now.
        create_dataset: the dataset document to create when it does not exist yet.
        claim: a document created in the same batch; if it already exists, this allocation
            happened before (a redelivered event) and its recorded version is returned.

    Raises:
        NotFound: the dataset does not exist (or is being deleted) and `create_dataset` is None.
        AlreadyCreated: `create_dataset` is given and the dataset exists (a replayed create).
    """
    head = dataset_ref(tenant, dataset_id)
    for _attempt in range(_ALLOCATE_ATTEMPTS):
        if claim is not None:
            earlier = claim.get()
            if earlier.exists:
                return Allocated(int(earlier.get("version")), created=False)
        snapshot = head.get()
        now = datetime.now(UTC)
        batch = head._client.batch()
        if snapshot.exists and create_dataset is not None:
            raise AlreadyCreated(dataset_id)
        if snapshot.exists:
            current = snapshot.to_dict() or {}
            if current.get("deleting"):
                raise NotFound(f"dataset {dataset_id!r} is being deleted", code="dataset_not_found")
            number = int(current["version_count"]) + 1
            changes = {"version_count": number, "updated_at": now}
            unchanged = head._client.write_option(last_update_time=snapshot.update_time)
            batch.update(head, changes, option=unchanged)
            head_doc = {**current, **changes}
        elif create_dataset is not None:
            number = 1
            head_doc = {**create_dataset, "version_count": 1, "created_at": now, "updated_at": now}
            batch.create(head, head_doc)
        else:
            raise NotFound(f"no dataset {dataset_id!r}", code="dataset_not_found")
        version_doc = make_version(number, now)
        batch.create(version_ref(tenant, dataset_id, number), version_doc)
        if claim is not None:
            batch.create(claim, {"version": number, "created_at": now})
        try:
            batch.commit()
        except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Conflict, gexc.Aborted):
            continue  # someone else moved the head (or made the claim) first: look again
        return Allocated(number, created=True, version_doc=version_doc, head_doc=head_doc)
    raise gexc.ServiceUnavailable(f"could not allocate a version of {dataset_id} under contention")


def raise_latest(tenant: str, dataset_id: str, version: int) -> None:
    """Make `version` the dataset's latest ready version unless a newer one already is."""
    head = dataset_ref(tenant, dataset_id)
    for _attempt in range(_ALLOCATE_ATTEMPTS):
        snapshot = head.get()
        if not snapshot.exists:
            return
        current = (snapshot.to_dict() or {}).get("latest_version")
        if current is not None and int(current) >= version:
            return  # events arrive out of order: an older version never replaces a newer one
        try:
            head.update(
                {"latest_version": version, "updated_at": datetime.now(UTC)},
                option=head._client.write_option(last_update_time=snapshot.update_time),
            )
            return
        except (gexc.FailedPrecondition, gexc.Aborted):
            continue
    log.warning("could not raise latest_version", extra={"dataset_id": dataset_id, "version": version})
