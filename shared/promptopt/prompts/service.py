"""Prompts: create, read, version, list and label. Every version is immutable.

Layout: `tenants/{t}/prompts/{id}` holds the head (latest version number, labels, and a copy of
the latest version so the common read is one document get) and `.../versions/{n:08d}` the
versions. A new version is written with a *create* precondition in
the same atomic batch as the head, so two writers based on the same version can never both
succeed (the loser gets 412) and no transaction contends on the head document.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from google.api_core import exceptions as gexc

from promptopt.auth import Principal
from promptopt.errors import InvalidRequest, NotFound, PreconditionFailed
from promptopt.json_values import MAX_VERSION
from promptopt.prompts.names import LABEL_PATTERN, check_assignable_label, version_id
from promptopt.prompts.templates import placeholders
from promptopt.store import sorting
from promptopt.store.pagination import decode_token, encode_token, page_size
from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference, DocumentSnapshot

    # The models (and pydantic) load where one is built or parsed: deleting, archiving and
    # unarchiving a prompt and removing a label answer with plain dicts and need none.
    from promptopt.prompts.models import (
        PromptCreate,
        PromptListQuery,
        PromptPatch,
        PromptUpdate,
        PromptVersion,
        Provenance,
        VersionsQuery,
    )

COLLECTION = "prompts"
PROMPT_ID_RE = re.compile(r"^pr_[0-9a-f]{20}$")
_LABEL_RE = re.compile(LABEL_PATTERN)
_SUMMARY_FIELDS = [
    "prompt_id",
    "name",
    "latest_version",
    "labels",
    "description",
    "tags",
    "archived",
    "created_at",
    "updated_at",
    "created_by",
]


def head_ref(tenant: str, prompt_id: str) -> DocumentReference:
    """The prompt's head document (its versions are a subcollection of it)."""
    return tenant_collection(tenant, COLLECTION).document(prompt_id)


def _version_ref(head: DocumentReference, version: int) -> DocumentReference:
    return head.collection("versions").document(f"{version:08d}")


def new_prompt_id(tenant: str, body: PromptCreate, idempotency_key: str | None = None) -> str:
    """A prompt id: random, or derived from the Idempotency-Key and the body when one is given.

    The derived id makes the write itself idempotent: a retry whose idempotency record was lost
    (a crash after the commit, a timeout that actually landed) collides instead of creating twice.
    """
    if idempotency_key is None:
        return "pr_" + secrets.token_hex(10)
    seed = json.dumps([tenant, idempotency_key, body.model_dump(mode="json")], sort_keys=True)
    return "pr_" + hashlib.sha256(seed.encode()).hexdigest()[:20]


def parse_label(value: str) -> str:
    """A label from a URL path, validated like labels in bodies."""
    if not _LABEL_RE.fullmatch(value):
        raise InvalidRequest(
            "labels are 1-32 lowercase letters, digits, '-' or '_', starting with a letter",
            code="invalid_label",
        )
    return value


def etag(version: int) -> str:
    """The strong ETag of a version (quoted, as HTTP wants it)."""
    return f'"v{version}"'


def parse_if_match(value: str) -> int | None:
    """The version an If-Match header names; None for `*` (whatever is current)."""
    value = value.strip()
    if value == "*":
        return None
    if value.startswith('"v') and value.endswith('"') and value[2:-1].isdigit():
        return int(value[2:-1])
    raise PreconditionFailed(
        f'If-Match {value[:40]!r} is not an ETag of this API (expected e.g. "v3")', code="bad_etag"
    )


def version_view(data: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    """A version as the API shows it (a `PromptVersion`, as a plain dict).

    Its own texts with the prompt's current name, tags and labels. The reads (GET a prompt, its
    versions) answer with it and need no pydantic on their cold start; tests/unit/test_views.py
    ties the fields to the model.
    """
    number = int(data["version"])
    labels: dict[str, int] = head.get("labels") or {}
    provenance = data.get("provenance") or {}
    return {
        "prompt_id": data["prompt_id"],
        "version": number,
        "version_id": version_id(data["prompt_id"], number),
        "parent_id": data.get("parent_id"),
        "name": head["name"] if "name" in head else data.get("name"),
        "system_prompt": data["system_prompt"],
        "output_prompt": data["output_prompt"],
        "variables": placeholders(data["output_prompt"]),
        "metadata": data.get("metadata") or {},
        "labels": sorted(label for label, v in labels.items() if v == number),
        "provenance": {
            "source": provenance.get("source", "user"),
            "message": provenance.get("message"),
            "details": provenance.get("details"),
        },
        "description": head.get("description") or "",
        "tags": head.get("tags") or [],
        "archived": bool(head.get("archived")),
        "created_at": data["created_at"],
        "created_by": data["created_by"],
    }


def _version_from(data: dict[str, Any], head: dict[str, Any]) -> PromptVersion:
    from promptopt.prompts.models import PromptVersion

    return PromptVersion.model_validate(version_view(data, head))


def summary_from(snapshot: DocumentSnapshot) -> dict[str, Any]:
    """A prompt's head document as a listing shows it: a `PromptSummary`, as a plain dict.

    Archive and unarchive answer with it and need no pydantic on their cold start; the fields are
    tied to the model by tests/unit/test_views.py.
    """
    data = snapshot.to_dict() or {}
    return {
        "prompt_id": snapshot.id,
        "name": data.get("name"),
        "latest_version": data["latest_version"],
        "labels": data.get("labels") or {},
        "description": data.get("description") or "",
        "tags": data.get("tags") or [],
        "archived": bool(data.get("archived")),
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "created_by": data["created_by"],
    }


def label_result(prompt_id: str, labels: dict[str, int]) -> dict[str, Any]:
    """The labels of a prompt after a change: a `LabelResult`, as a plain dict (no pydantic)."""
    return {"prompt_id": prompt_id, "labels": labels}


def head_snapshot(principal: Principal, prompt_id: str) -> DocumentSnapshot:
    """The prompt's head document; 404 for unknown, malformed, other tenants' or deleting prompts."""
    # An id this API could never have issued is simply absent (and never reaches Firestore).
    if not PROMPT_ID_RE.fullmatch(prompt_id):
        raise NotFound(f"prompt {prompt_id[:40]} not found", code="prompt_not_found")
    snapshot = head_ref(principal.tenant, prompt_id).get()
    if not snapshot.exists or (snapshot.to_dict() or {}).get("deleting"):
        raise NotFound(f"prompt {prompt_id} not found", code="prompt_not_found")
    return snapshot


def _provenance(message: str | None = None) -> Provenance:
    from promptopt.prompts.models import Provenance

    return Provenance(message=message)


# What this module's own functions call, so a test can widen a race by substituting it.
_head = head_snapshot


def create_prompt(
    *,
    principal: Principal,
    body: PromptCreate,
    provenance: Provenance | None = None,
    idempotency_key: str | None = None,
) -> PromptVersion:
    """Create a prompt with its version 1 (once per Idempotency-Key and body)."""
    prompt_id = new_prompt_id(principal.tenant, body, idempotency_key)
    now = datetime.now(UTC)
    head = head_ref(principal.tenant, prompt_id)
    version_doc: dict[str, Any] = {
        "prompt_id": prompt_id,
        "version": 1,
        "parent_id": None,
        "name": body.name,
        "system_prompt": body.system_prompt,
        "output_prompt": body.output_prompt,
        "metadata": body.metadata,
        "provenance": (provenance or _provenance()).model_dump(),
        "created_at": now,
        "created_by": principal.subject,
    }
    head_doc: dict[str, Any] = {
        "prompt_id": prompt_id,
        "name": body.name,
        "description": body.description,
        "tags": body.tags,
        "archived": False,  # listings filter on it, so every head carries it
        "latest_version": 1,
        "labels": {},
        "label_names": [],
        "created_at": now,
        "updated_at": now,
        "created_by": principal.subject,
        "latest": version_doc,
    }
    batch = head._client.batch()
    batch.create(head, head_doc)
    batch.create(_version_ref(head, 1), version_doc)
    try:
        batch.commit()
    except (gexc.AlreadyExists, gexc.Conflict):
        if idempotency_key is None:
            raise
        # An earlier delivery of this very request already created it: answer with that.
        existing = _version_ref(head, 1).get()
        return _version_from(existing.to_dict() or {}, head.get().to_dict() or {})
    return _version_from(version_doc, head_doc)


def get_prompt_view(
    *, principal: Principal, prompt_id: str, version: int | None = None, label: str | None = None
) -> dict[str, Any]:
    """The latest version, or the one named by number or label, as a plain dict (`version_view`).

    What GET /prompts/{id} answers, and what jobs, completions and experiments read a stored
    prompt through (no prompt schemas on their cold start).
    """
    return version_view(*_select(principal, prompt_id, version, label))


def simple_selector(args: Mapping[str, str]) -> tuple[int | None, str | None] | None:
    """(version, label) from a query string that is plainly valid, else None.

    GET /prompts/{id} with no query, `?version=N` or `?label=L` is read without building
    PromptGetQuery (no pydantic on the cold start); anything else (both, a bad value, an unknown
    parameter) goes through the model, which words the 400. tests/unit/test_views.py checks
    that both agree wherever this answers.
    """
    if not args:
        return None, None
    if len(args) != 1:
        return None
    ((name, value),) = args.items()
    if name == "version" and value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_VERSION:
        return int(value), None
    if name == "label" and _LABEL_RE.fullmatch(value):
        return None, value
    return None


def plain_label_version(body: Any) -> int | None:
    """The version of a LabelSet body that is plainly valid (`{"version": N}`), else None.

    Read without building the model (no pydantic on the cold start of PUT …/labels/{label});
    anything else goes through LabelSet, which words the 400. tests/unit/test_views.py checks that
    both agree wherever this answers.
    """
    if not isinstance(body, dict) or list(body) != ["version"]:
        return None
    version = body["version"]
    return version if type(version) is int and 1 <= version <= MAX_VERSION else None


def _select(
    principal: Principal, prompt_id: str, version: int | None, label: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The version document named by number, label or neither (the latest), and the head's data."""
    head = _head(principal, prompt_id)
    data = head.to_dict() or {}
    labels: dict[str, int] = data.get("labels") or {}
    if label is not None:
        if label not in labels:
            raise NotFound(f"prompt {prompt_id} has no label {label!r}", code="label_not_found")
        number = labels[label]
    else:
        number = version or int(data["latest_version"])
    if number == data["latest_version"] and "latest" in data:
        return data["latest"], data
    snapshot = _version_ref(head.reference, number).get()
    if not snapshot.exists:
        raise NotFound(f"prompt {prompt_id} has no version {number}", code="version_not_found")
    return snapshot.to_dict() or {}, data


def update_prompt(
    *,
    principal: Principal,
    prompt_id: str,
    if_match: int | None,
    body: PromptUpdate,
    provenance: Provenance | None = None,
    parent: int | None = None,
) -> PromptVersion:
    """Create the next version from the one If-Match names (None, `*`: the latest as read now).

    Either way the write is conditional on that version: version n+1 is created (create-if-absent)
    in the same batch as the head, so of all writers based on one read exactly one wins.

    `parent` names the version the new one was derived from when that is not the base (an
    optimizer candidate grown from an older version); fields left out still come from the base.
    """
    head = _head(principal, prompt_id)
    data = head.to_dict() or {}
    latest = int(data["latest_version"])
    base = latest if if_match is None else if_match
    if base != latest:
        raise PreconditionFailed(
            f"prompt {prompt_id} is at version {latest}, not {base}; fetch it and retry",
            code="version_mismatch",
            current_etag=etag(latest),
        )
    base_doc = data.get("latest") or _version_ref(head.reference, base).get().to_dict() or {}
    number = base + 1
    now = datetime.now(UTC)
    # The name belongs to the prompt (PATCH renames without a version): keep the current one.
    name = body.name if body.name is not None else data.get("name", base_doc.get("name"))
    version_doc: dict[str, Any] = {
        "prompt_id": prompt_id,
        "version": number,
        "parent_id": version_id(prompt_id, base if parent is None else parent),
        "name": name,
        "system_prompt": body.system_prompt if body.system_prompt is not None else base_doc["system_prompt"],
        "output_prompt": body.output_prompt if body.output_prompt is not None else base_doc["output_prompt"],
        "metadata": body.metadata if body.metadata is not None else base_doc.get("metadata") or {},
        "provenance": (provenance or _provenance(message=body.message)).model_dump(),
        "created_at": now,
        "created_by": principal.subject,
    }
    batch = head.reference._client.batch()
    batch.create(_version_ref(head.reference, number), version_doc)
    batch.update(
        head.reference, {"latest_version": number, "updated_at": now, "name": name, "latest": version_doc}
    )
    try:
        batch.commit()
    except gexc.Aborted:
        raise  # contention, not a lost race: surfaces as 503 so the client retries
    except (gexc.AlreadyExists, gexc.Conflict):
        # Another writer based on the same version (a concrete ETag or `*`) created it first.
        current = (head.reference.get().to_dict() or {}).get("latest_version") or number
        raise PreconditionFailed(
            f"prompt {prompt_id} changed while this update was made; fetch it and retry",
            code="version_mismatch",
            current_etag=etag(max(int(current), number)),
        ) from None
    return _version_from(version_doc, {**data, "name": name})


def patch_prompt(
    *, principal: Principal, prompt_id: str, if_match: int | None, body: PromptPatch
) -> PromptVersion:
    """Change the prompt's own fields (name, description, tags) in place: no version is created.

    If-Match names the latest version the caller saw (`*`: any). The head is written only if it is
    unchanged since it was read here, so a concurrent edit, label move or new version makes this a
    412 rather than being overwritten silently.
    """
    head = _head(principal, prompt_id)
    data = head.to_dict() or {}
    latest = int(data["latest_version"])
    if if_match is not None and if_match != latest:
        raise PreconditionFailed(
            f"prompt {prompt_id} is at version {latest}, not {if_match}; fetch it and retry",
            code="version_mismatch",
            current_etag=etag(latest),
        )
    changes: dict[str, Any] = {
        k: v for k, v in body.model_dump(exclude_none=True).items() if k in ("name", "description", "tags")
    }
    changes["updated_at"] = datetime.now(UTC)
    reference = head.reference
    try:
        reference.update(changes, option=reference._client.write_option(last_update_time=head.update_time))
    except (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted):
        raise PreconditionFailed(
            f"prompt {prompt_id} changed while this edit was made; fetch it and retry",
            code="prompt_changed",
            current_etag=etag(latest),
        ) from None
    data.update(changes)
    return _version_from(data["latest"], data)


def _versions_cursor(values: list[Any]) -> int:
    (version,) = values
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("malformed cursor")
    return version


class ListDefaults(NamedTuple):
    """PromptListQuery with nothing given.

    GET /prompts without a query string reads these and loads no pydantic (cold start);
    tests/unit/test_views.py checks they match the model.
    """

    page_size: int | None = None
    page_token: str | None = None
    name: str | None = None
    label: str | None = None
    sort: str = "-created"
    include_archived: bool = False


class VersionsDefaults(NamedTuple):
    """VersionsQuery with nothing given (as ListDefaults, for GET /prompts/{id}/versions)."""

    page_size: int | None = None
    page_token: str | None = None
    source: str | None = None


def list_prompts(*, principal: Principal, query: PromptListQuery | ListDefaults) -> dict[str, Any]:
    """Prompts in the order `sort` names (newest first by default), optionally filtered.

    A `PromptPage`, as a plain dict. Archived prompts are left out unless `include_archived`.
    Ties on the sort value are broken by the prompt id in the same direction, so pages never skip
    or repeat an item.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    by = sorting.order(query.sort, id_field="prompt_id")
    scope = {
        "name": query.name,
        "label": query.label,
        "sort": query.sort,
        "archived": query.include_archived,
    }
    cursor = decode_token(
        query.page_token,
        scope,
        lambda values: by.parse(values, PROMPT_ID_RE.fullmatch),
        tenant=principal.tenant,
    )
    size = page_size(query.page_size)
    q: Any = tenant_collection(principal.tenant, COLLECTION)
    if query.name is not None:
        q = q.where(filter=FieldFilter("name", "==", query.name))
    if query.label is not None:
        q = q.where(filter=FieldFilter("label_names", "array_contains", query.label))
    if not query.include_archived:
        q = q.where(filter=FieldFilter("archived", "==", False))
    # The head carries the latest version's text; a listing needs none of it.
    q = by.apply(q).select(_SUMMARY_FIELDS)
    if cursor is not None:
        q = by.start_after(q, cursor)
    snapshots = list(q.limit(size + 1).stream())
    items = [summary_from(s) for s in snapshots[:size]]
    token = None
    if len(snapshots) > size:
        token = encode_token(by.cursor(snapshots[size - 1].to_dict() or {}), scope, tenant=principal.tenant)
    return {"items": items, "next_page_token": token}


def list_versions(
    *, principal: Principal, prompt_id: str, query: VersionsQuery | VersionsDefaults
) -> dict[str, Any]:
    """A prompt's versions, newest first, each with its parent: the lineage (a `VersionPage`)."""
    from google.cloud.firestore import Query
    from google.cloud.firestore_v1.base_query import FieldFilter

    head = _head(principal, prompt_id)
    head_data = head.to_dict() or {}
    labels: dict[str, int] = head_data.get("labels") or {}

    scope = {"prompt": prompt_id, "source": query.source}
    cursor = decode_token(query.page_token, scope, _versions_cursor, tenant=principal.tenant)
    size = page_size(query.page_size)
    q: Any = head.reference.collection("versions")
    if query.source is not None:  # the lineage tree stays readable with optimizer versions left out
        q = q.where(filter=FieldFilter("provenance.source", "==", query.source))
    q = q.order_by("version", direction=Query.DESCENDING)
    if cursor is not None:
        q = q.start_after({"version": cursor})
    snapshots = list(q.limit(size + 1).stream())
    items = [version_view(s.to_dict() or {}, head_data) for s in snapshots[:size]]
    token = (
        encode_token([items[-1]["version"]], scope, tenant=principal.tenant)
        if len(snapshots) > size
        else None
    )
    return {"items": items, "next_page_token": token, "labels": labels}


def set_label(*, principal: Principal, prompt_id: str, label: str, version: int) -> dict[str, Any]:
    """Point `label` at `version` (creating or moving it); reserved names are refused."""
    try:
        check_assignable_label(label)
    except ValueError as exc:
        raise InvalidRequest(str(exc), code="reserved_label") from None
    from google.cloud.firestore import ArrayUnion
    from google.cloud.firestore_v1.field_path import FieldPath

    head = _head(principal, prompt_id)
    if not _version_ref(head.reference, version).get().exists:
        raise NotFound(f"prompt {prompt_id} has no version {version}", code="version_not_found")
    head.reference.update(
        {
            FieldPath("labels", label).to_api_repr(): version,
            "label_names": ArrayUnion([label]),
            "updated_at": datetime.now(UTC),
        }
    )
    labels = dict((head.to_dict() or {}).get("labels") or {})
    labels[label] = version
    return label_result(prompt_id, labels)


def remove_label(*, principal: Principal, prompt_id: str, label: str) -> dict[str, Any]:
    """Remove `label` from the prompt; removing an absent label is a 404."""
    from google.cloud.firestore import DELETE_FIELD, ArrayRemove
    from google.cloud.firestore_v1.field_path import FieldPath

    head = _head(principal, prompt_id)
    labels = dict((head.to_dict() or {}).get("labels") or {})
    if label not in labels:
        raise NotFound(f"prompt {prompt_id} has no label {label!r}", code="label_not_found")
    head.reference.update(
        {
            FieldPath("labels", label).to_api_repr(): DELETE_FIELD,
            "label_names": ArrayRemove([label]),
            "updated_at": datetime.now(UTC),
        }
    )
    labels.pop(label)
    return label_result(prompt_id, labels)
