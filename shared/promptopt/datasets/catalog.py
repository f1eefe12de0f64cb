"""Reading and deleting datasets: one dataset with its versions, the paginated listing, DELETE."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from google.api_core import exceptions as gexc

from promptopt.auth import Principal
from promptopt.clients import firestore_client, storage_client
from promptopt.config import settings
from promptopt.datasets import records
from promptopt.datasets.files.layout import DATASET_ID_RE, dataset_prefix
from promptopt.datasets.views import dataset_dict
from promptopt.errors import NotFound
from promptopt.store import sorting
from promptopt.store.pagination import decode_token, encode_token, page_size
from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    # Reads answer plain dicts (datasets.views) and take their defaults from the NamedTuples
    # below without a query string: no pydantic on their cold start.
    from promptopt.datasets.models import DatasetGetQuery, DatasetListQuery

log = logging.getLogger(__name__)


class GetDefaults(NamedTuple):
    """DatasetGetQuery with nothing given (tests/unit/test_views.py checks it against the model)."""

    versions: int = 20


class ListDefaults(NamedTuple):
    """DatasetListQuery with nothing given (tests/unit/test_views.py checks it against the model)."""

    page_size: int | None = None
    page_token: str | None = None
    name: str | None = None
    sort: str = "-created"


def get_dataset(
    *, principal: Principal, dataset_id: str, query: DatasetGetQuery | GetDefaults
) -> dict[str, Any]:
    """The dataset with its newest `query.versions` versions (status, statistics, errors).

    A Dataset, as a plain dict.
    """
    head = records.load_dataset(principal.tenant, dataset_id).to_dict() or {}
    versions = records.newest_versions(principal.tenant, dataset_id, query.versions)
    return dataset_dict(head, versions)


def list_datasets(*, principal: Principal, query: DatasetListQuery | ListDefaults) -> dict[str, Any]:
    """Datasets in the order `sort` names (newest first by default), optionally by exact name.

    A DatasetPage, as a plain dict.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    by = sorting.order(query.sort, id_field="dataset_id")
    scope = {"name": query.name, "sort": query.sort}
    cursor = decode_token(
        query.page_token, scope, lambda v: by.parse(v, DATASET_ID_RE.fullmatch), tenant=principal.tenant
    )
    size = page_size(query.page_size)
    q: Any = tenant_collection(principal.tenant, records.COLLECTION)
    if query.name is not None:
        q = q.where(filter=FieldFilter("name", "==", query.name))
    q = by.apply(q)
    if cursor is not None:
        q = by.start_after(q, cursor)
    snapshots = list(q.limit(size + 1).stream())
    visible = [s.to_dict() or {} for s in snapshots[:size]]
    items = [dataset_dict(data) for data in visible if not data.get("deleting")]
    token = None
    if len(snapshots) > size:
        token = encode_token(by.cursor(visible[-1]), scope, tenant=principal.tenant)
    return {"items": items, "next_page_token": token}


def delete_dataset(*, principal: Principal, dataset_id: str) -> None:
    """Remove the dataset's files and documents. Safe to repeat after a partial failure.

    The dataset is marked `deleting` first, so it disappears from reads at once and a late
    ingest event for it is ignored; files go next, the documents last.
    """
    tenant = principal.tenant
    ref = records.dataset_ref(tenant, dataset_id)
    snapshot = ref.get() if DATASET_ID_RE.fullmatch(dataset_id) else None
    if snapshot is None or not snapshot.exists:
        raise NotFound(f"no dataset {dataset_id!r}", code="dataset_not_found")
    ref.update({"deleting": True})
    bucket = storage_client().bucket(settings().datasets_bucket)
    versions = [v.to_dict() or {} for v in ref.collection("versions").stream()]
    dropped = [v.get("object") for v in versions if v.get("origin") == "bucket_drop"]
    blobs = list(bucket.list_blobs(prefix=dataset_prefix(tenant, dataset_id)))
    blobs += [bucket.blob(name) for name in dropped if name]
    for blob in blobs:
        with contextlib.suppress(gexc.NotFound):  # a repeated DELETE after a partial failure
            blob.delete()
    firestore_client().recursive_delete(ref)
    log.info("dataset deleted", extra={"dataset_id": dataset_id, "objects": len(blobs)})
