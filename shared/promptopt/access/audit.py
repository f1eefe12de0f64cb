"""The audit log: every successful write, per tenant, kept `audit_retention_days`.

`promptopt.http.serve` records an entry after each 2xx answer of a write route (every method but
GET, unless the manifest says `audit: false` for a POST that changes nothing), so no handler can
forget to: who (subject, role), what (the operation, method and path), which id, when, and with
which credential (a person's token, or the API key a token was exchanged for). A replayed
Idempotency-Key answer wrote nothing and records nothing. Request bodies are never recorded.

Entries are read newest first, one filter at a time (action, actor or resource id) with an
optional time range; Terraform creates the composite indexes those queries need and the TTL
policy on `expires_at`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.access import paths
from promptopt.config import settings
from promptopt.errors import InvalidRequest
from promptopt.store import pagination

if TYPE_CHECKING:
    # The models (and pydantic) load where the log is read: every write records an entry, and
    # most writes' first request needs no pydantic otherwise.
    from promptopt.access.models import AuditQuery
    from promptopt.auth import Principal

log = logging.getLogger(__name__)

_ID_KEYS = ("key_id", "prompt_id", "dataset_id", "job_id", "experiment_id", "run_id", "uid")


def resource_id(path_params: dict[str, str], location: str | None, body: Any, path: str = "") -> str | None:
    """Which resource a write touched.

    The created one (its Location, or an id in the answer), else the last id in the path, else
    (a singleton such as the spending cap) the path's last segment.
    """
    if location:
        return location.rstrip("/").rsplit("/", 1)[-1][:200] or None
    if isinstance(body, dict):
        for key in _ID_KEYS:
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    if path_params:
        return str(list(path_params.values())[-1])[:200]
    return path.rstrip("/").rsplit("/", 1)[-1][:200] or None


def record(
    *,
    principal: Principal,
    action: str,
    method: str,
    path: str,
    status: int,
    resource: str | None,
    trace: str | None,
) -> None:
    """Write one entry (a failure is logged, never raised: the write itself has happened)."""
    now = datetime.now(UTC)
    entry_id = secrets.token_hex(10)
    entry = {
        "entry_id": entry_id,
        "at": now,
        "action": action,
        "method": method,
        "path": path[:500],
        "status": status,
        "resource_id": resource,
        "actor": principal.subject,
        "role": principal.role.name,
        "credential": principal.credential,
        "key_id": principal.key_id,
        "trace": trace,
        "expires_at": now + timedelta(days=settings().audit_retention_days),
    }
    try:
        paths.audit(principal.tenant).document(entry_id).create(entry)
    except Exception:
        log.exception(
            "audit entry not recorded", extra={"fields": {"audit": {**entry, "tenant": principal.tenant}}}
        )


# The fields of `AuditEntry`: GET /audit answers with plain dicts and needs no pydantic on its
# cold start (tests/unit/test_views.py ties this list to the model).
ENTRY_FIELDS = (
    "entry_id",
    "at",
    "action",
    "method",
    "path",
    "status",
    "resource_id",
    "actor",
    "role",
    "credential",
    "key_id",
    "trace",
)


def view(data: dict[str, Any]) -> dict[str, Any]:
    """An entry as listed (an `AuditEntry`)."""
    return {name: data.get(name) for name in ENTRY_FIELDS}


class ListDefaults(NamedTuple):
    """AuditQuery with nothing given.

    GET /audit without a query string reads these and loads no pydantic (cold start);
    tests/unit/test_views.py checks they match the model.
    """

    page_size: int | None = None
    page_token: str | None = None
    action: str | None = None
    actor: str | None = None
    resource_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_entries(*, principal: Principal, query: AuditQuery | ListDefaults) -> dict[str, Any]:
    """Entries newest first, filtered by one of action / actor / resource_id and a time range.

    An `AuditPage`, as a plain dict.
    """
    from google.cloud.firestore import Query
    from google.cloud.firestore_v1.base_query import FieldFilter

    filters = {
        k: v
        for k, v in (("action", query.action), ("actor", query.actor), ("resource_id", query.resource_id))
        if v
    }
    if len(filters) > 1:
        raise InvalidRequest(
            "filter by one of action, actor or resource_id at a time", code="too_many_filters"
        )
    scope = {**filters, "since": str(query.since), "until": str(query.until)}
    size = pagination.page_size(query.page_size)
    q: Any = paths.audit(principal.tenant)
    for field, value in filters.items():
        q = q.where(filter=FieldFilter(field, "==", value))
    if query.since is not None:
        q = q.where(filter=FieldFilter("at", ">=", query.since))
    if query.until is not None:
        q = q.where(filter=FieldFilter("at", "<", query.until))
    q = q.order_by("at", direction=Query.DESCENDING).order_by("entry_id", direction=Query.DESCENDING)
    cursor = pagination.decode_token(query.page_token, scope, _cursor, tenant=principal.tenant)
    if cursor is not None:
        q = q.start_after({"at": cursor[0], "entry_id": cursor[1]})
    found = list(q.limit(size + 1).stream())
    items = [view(s.to_dict() or {}) for s in found[:size]]
    token = None
    if len(found) > size:
        last = found[size - 1]
        token = pagination.encode_token(
            [last.get("at").isoformat(), last.get("entry_id")], scope, tenant=principal.tenant
        )
    return {"items": items, "next_page_token": token}


def _cursor(raw: list[Any]) -> tuple[datetime, str]:
    at, entry_id = raw
    return datetime.fromisoformat(str(at)), str(entry_id)
