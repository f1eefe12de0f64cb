"""Reading and deleting experiments: one, the listing, DELETE; answered as plain dicts.

Apart from creating and updating (experiments.service), which validate bodies with the models,
so that these load no pydantic on their cold start; tests/unit/test_views.py checks `view_dict`
against ExperimentView and the list defaults against ExperimentListQuery.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from google.api_core import exceptions as gexc

from promptopt.errors import Conflict, NotFound
from promptopt.experiments import paths
from promptopt.store import sorting
from promptopt.store.pagination import decode_token, encode_token, page_size

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference, DocumentReference, DocumentSnapshot

    from promptopt.auth import Principal
    from promptopt.experiments.models import ExperimentListQuery

log = logging.getLogger(__name__)

_DELETE_BATCH = 400  # under Firestore's 500 writes per batch
UPDATE_ATTEMPTS = 5


class ListDefaults(NamedTuple):
    """ExperimentListQuery with nothing given."""

    page_size: int | None = None
    page_token: str | None = None
    name: str | None = None
    status: str | None = None
    sort: str = "-created"


def not_found(experiment_id: str) -> NotFound:
    """The 404 of an unknown, malformed or other tenant's experiment id."""
    return NotFound(f"experiment {experiment_id[:40]} not found", code="experiment_not_found")


def snapshot_of(principal: Principal, experiment_id: str) -> DocumentSnapshot:
    """The experiment's snapshot; 404 for unknown, malformed or deleting ones."""
    if not paths.EXPERIMENT_ID_RE.fullmatch(experiment_id):
        raise not_found(experiment_id)
    snapshot = paths.experiment_ref(principal.tenant, experiment_id).get()
    if not snapshot.exists or (snapshot.to_dict() or {}).get("deleting"):
        raise not_found(experiment_id)
    return snapshot


def load(principal: Principal, experiment_id: str) -> tuple[DocumentReference, dict[str, Any]]:
    """The experiment's reference and data; 404 for other tenants' ids, unknown or malformed ids."""
    snapshot = snapshot_of(principal, experiment_id)
    return snapshot.reference, snapshot.to_dict() or {}


def view_dict(data: dict[str, Any]) -> dict[str, Any]:
    """An experiment document as the API shows it: an ExperimentView's fields, as a plain dict."""
    return {
        "experiment_id": str(data["experiment_id"]),
        "name": str(data["name"]),
        "description": str(data["description"]),
        "mode": data["mode"],
        "prompt": dict(data["prompt"]),
        "dataset": dict(data["dataset"]),
        "target_model": str(data["target_model"]),
        "optimizer_model": str(data["optimizer_model"]),
        "metric": dict(data["metric"]),
        "secondary_metrics": [dict(m) for m in data["secondary_metrics"]],
        "optimizer": dict(data["optimizer"]),
        "budget": dict(data["budget"]),
        "promote_label": data["promote_label"],
        "schedule": None if data["schedule"] is None else dict(data["schedule"]),
        "regression": None if data["regression"] is None else dict(data["regression"]),
        "temperature": float(data["temperature"]),
        "max_tokens": int(data["max_tokens"]),
        "active_run_id": data.get("active_run_id"),
        "last_run_id": data.get("last_run_id"),
        "last_run_status": data.get("last_run_status"),
        "runs": int(data.get("runs") or 0),
        "next_run_at": data.get("next_run_at"),
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "created_by": str(data["created_by"]),
    }


def created_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A new experiment's document as its create answers it: ExperimentCreated's fields."""
    return {**view_dict(data), "estimate": dict(data["estimate"])}


def get_experiment(*, principal: Principal, experiment_id: str) -> dict[str, Any]:
    """One experiment with what its runs did (an ExperimentView, as a plain dict)."""
    _ref, data = load(principal, experiment_id)
    return view_dict(data)


def list_experiments(*, principal: Principal, query: ExperimentListQuery | ListDefaults) -> dict[str, Any]:
    """Experiments newest first; `name` matches whole names regardless of case, `status` the latest run's.

    An ExperimentPage, as a plain dict.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    name = query.name.strip().lower() if query.name is not None else None
    by = sorting.order(query.sort, id_field="experiment_id", name_field="name_lower")
    scope = {"name": name, "status": query.status, "sort": query.sort}
    cursor = decode_token(
        query.page_token,
        scope,
        lambda v: by.parse(v, paths.EXPERIMENT_ID_RE.fullmatch),
        tenant=principal.tenant,
    )
    size = page_size(query.page_size)
    q: Any = paths.experiments(principal.tenant)
    if name is not None:
        q = q.where(filter=FieldFilter("name_lower", "==", name))
    if query.status is not None:
        q = q.where(filter=FieldFilter("last_run_status", "==", query.status))
    q = by.apply(q)
    if cursor is not None:
        q = by.start_after(q, cursor)
    snapshots = list(q.limit(size + 1).stream())
    page = [s.to_dict() or {} for s in snapshots[:size]]
    # One being deleted is gone for readers (its page may come out a little short).
    items = [view_dict(data) for data in page if not data.get("deleting")]
    token = None
    if len(snapshots) > size:
        token = encode_token(by.cursor(page[-1]), scope, tenant=principal.tenant)
    return {"items": items, "next_page_token": token}


def delete_experiment(*, principal: Principal, experiment_id: str) -> None:
    """Delete an experiment with its runs, their candidates and events; 409 while a run is active.

    The experiment is first marked `deleting` (conditional on it being unchanged, so a run starting
    meanwhile wins and the delete answers 409); from then on it reads as absent and the tick skips
    it. Its runs go next, in batches; the document itself last, so a delete cut short by a timeout
    is finished by the next one.
    """
    if not paths.EXPERIMENT_ID_RE.fullmatch(experiment_id):
        raise not_found(experiment_id)
    ref = paths.experiment_ref(principal.tenant, experiment_id)
    for _attempt in range(UPDATE_ATTEMPTS):
        snapshot = ref.get()
        data = snapshot.to_dict() or {}
        if not snapshot.exists:
            raise not_found(experiment_id)
        if data.get("deleting"):
            break
        if data.get("active_run_id"):
            raise Conflict(
                f"experiment {experiment_id} has an active run ({data['active_run_id']}); "
                "cancel it or wait for it to end",
                code="experiment_active",
                run_id=data["active_run_id"],
            )
        try:
            ref.update(
                {"deleting": True, "next_run_at": None, "updated_at": datetime.now(UTC)},
                option=ref._client.write_option(last_update_time=snapshot.update_time),
            )
        except (gexc.FailedPrecondition, gexc.Aborted):
            continue
        break
    else:
        raise Conflict(
            f"experiment {experiment_id} is changing too often to delete; retry shortly",
            code="experiment_busy",
            retry_after_s=2,
        )
    removed = _delete_collection(paths.runs(principal.tenant, experiment_id))
    ref.delete()
    log.info(
        "experiment %s deleted with %d documents below it",
        experiment_id,
        removed,
        extra={"fields": {"experiment_id": experiment_id}},
    )


def _delete_collection(collection: CollectionReference) -> int:
    """Delete every document of `collection` and, first, everything below each; returns the count."""
    removed = 0
    documents = list(collection.list_documents(page_size=_DELETE_BATCH))  # those with only children too
    for document in documents:
        for child in document.collections():
            removed += _delete_collection(child)
    for start in range(0, len(documents), _DELETE_BATCH):
        batch = collection._client.batch()
        for document in documents[start : start + _DELETE_BATCH]:
            batch.delete(document)
        batch.commit()
    return removed + len(documents)
