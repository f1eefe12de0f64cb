"""API keys: create (the secret shown once), list, revoke, and the checks every request makes.

A key is `pok_<key id>_<secret>`: 16 hex characters naming the record, then 256 random bits. Only
the SHA-256 of the whole key is stored. A slow password hash buys nothing here: the secret is
random and long, so the digest cannot be searched, and a fast one keeps the exchange cheap.

Revocation reaches tokens already issued: a function that sees a token exchanged for a key asks
`check_active`, which reads the key at most once per `api_key_check_s` (30 s) per instance, so a
revoked key's tokens stop working within that time, though they live up to an hour.

Keys are managed by people: a token exchanged for a key cannot create or revoke keys, so a
leaked key cannot make itself a successor that outlives its revocation. A key never holds more
than its creator: creating one records the creator as a member (`members`), and a key whose
creator has since been demoted below its role, or removed from the tenant, stops working like a
revoked one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.access import paths
from promptopt.auth import Role
from promptopt.config import settings
from promptopt.errors import ApiError, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    # The models (and pydantic) load where a model is built: revoking a key and the check every
    # request with an exchanged token makes need neither, nor do the members and audit modules.
    from promptopt.auth import Principal

PREFIX = "pok_"
MAX_ACTIVE_KEYS = 50
SHOWN_PREFIX_CHARS = 12  # "pok_" + 8 characters of the key id: enough to tell keys apart
_LIST_LIMIT = 500
MAX_KEY_DAYS = 365  # ApiKeyCreate.expires_in_days
MAX_KEY_NAME_CHARS = 100  # ApiKeyCreate.name
_REQUIRED, _FIELDS = frozenset({"name", "role"}), frozenset({"name", "role", "expires_in_days"})


class NewKey(NamedTuple):
    """What a key is created with: ApiKeyCreate's fields."""

    name: str
    role: str
    expires_in_days: int | None = None


def plain_new_key(body: Any) -> NewKey | None:
    """The fields of a body that is plainly valid for ApiKeyCreate, else None.

    Such a body is read without building the model (no pydantic on this function's cold start);
    anything else, a name with surrounding spaces to strip included, goes through the model, which
    words the 400. tests/unit/test_views.py checks that both agree wherever this answers.
    """
    if not isinstance(body, dict) or not _REQUIRED <= body.keys() <= _FIELDS:
        return None
    name, role, days = body["name"], body["role"], body.get("expires_in_days")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_KEY_NAME_CHARS:
        return None
    if name[0].isspace() or name[-1].isspace() or not isinstance(role, str) or role not in Role.__members__:
        return None
    if days is not None and (type(days) is not int or not 1 <= days <= MAX_KEY_DAYS):
        return None
    return NewKey(name, role, days)


class InvalidApiKey(ApiError):
    """The key is unknown, malformed, revoked or expired (one answer for all, so none is told apart)."""

    status, code, title = 401, "invalid_api_key", "Invalid API key"


class ApiKeyRevoked(ApiError):
    """The token was exchanged for a key that has since been revoked or has expired."""

    status, code, title = 401, "api_key_revoked", "API key revoked"


def digest(secret: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(secret: str) -> str | None:
    """The key id inside a well-formed key, else None."""
    if not secret.startswith(PREFIX) or len(secret) < len(PREFIX) + 17 + 32:
        return None
    key_id, sep = secret[len(PREFIX) : len(PREFIX) + 16], secret[len(PREFIX) + 16]
    if sep != "_" or not paths.KEY_ID_RE.fullmatch(key_id):
        return None
    return key_id


def status(data: dict[str, Any], now: datetime | None = None) -> str:
    """active, revoked or expired."""
    if data.get("revoked_at") is not None:
        return "revoked"
    expires_at = data.get("expires_at")
    if expires_at is not None and expires_at <= (now or datetime.now(UTC)):
        return "expired"
    return "active"


def view(data: dict[str, Any]) -> dict[str, Any]:
    """A key record as listed: the fields of `ApiKey`, as a plain dict.

    GET /api-keys answers with these dicts and needs no pydantic on its cold start; the fields
    are tied to the model by tests/unit/test_views.py.
    """
    return {
        "key_id": data["key_id"],
        "name": data["name"],
        "role": data["role"],
        "prefix": data["prefix"],
        "status": status(data),
        "created_at": data["created_at"],
        "created_by": data["created_by"],
        "expires_at": data.get("expires_at"),
        "revoked_at": data.get("revoked_at"),
        "revoked_by": data.get("revoked_by"),
        "last_used_at": data.get("last_used_at"),
    }


def require_person(principal: Principal, what: str) -> None:
    """403 for a token exchanged for an API key: only people manage keys and members."""
    if principal.credential != "user":
        raise Forbidden(
            f"{what} needs a person's sign-in; a token exchanged for an API key cannot do it",
            code="person_required",
        )


def _active_count(tenant: str) -> int:
    # Only what `status` reads: a tenant may hold hundreds of revoked keys, each decoded here.
    return sum(1 for d in _tenant_keys(tenant, fields=("revoked_at", "expires_at")) if status(d) == "active")


def _tenant_keys(tenant: str, fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = paths.api_keys().where(filter=FieldFilter("tenant", "==", tenant)).limit(_LIST_LIMIT)
    if fields:
        query = query.select(fields)
    return [s.to_dict() or {} for s in query.stream()]


def create_key(*, principal: Principal, body: NewKey) -> dict[str, Any]:
    """A new key for the caller's tenant, with a role no higher than the caller's own.

    Answers ApiKeyCreated's fields, as a plain dict (tied to the model by tests/unit/test_views.py).
    """
    require_person(principal, "creating an API key")
    wanted = Role[body.role]
    if wanted > principal.role:
        raise Forbidden(
            f"a key's role cannot be above its creator's: you are {principal.role.name}, "
            f"the key asks for {body.role}",
            code="role_above_creator",
        )
    if _active_count(principal.tenant) >= MAX_ACTIVE_KEYS:
        raise Conflict(
            f"the tenant already has {MAX_ACTIVE_KEYS} active API keys; revoke one first",
            code="too_many_api_keys",
        )
    key_id = secrets.token_hex(8)
    secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    doc: dict[str, Any] = {
        "key_id": key_id,
        "tenant": principal.tenant,
        "name": body.name,
        "role": body.role,
        "hash": digest(secret),
        "prefix": secret[:SHOWN_PREFIX_CHARS],
        "created_at": now,
        "created_by": principal.subject,
        "expires_at": now + timedelta(days=body.expires_in_days) if body.expires_in_days else None,
        "revoked_at": None,
        "revoked_by": None,
        "last_used_at": None,
    }
    _record_creator(principal, now)
    paths.api_key_ref(key_id).create(doc)
    return {**view(doc), "secret": secret}


def _record_creator(principal: Principal, now: datetime) -> None:
    """Make sure the creator is a recorded member, so a later demotion reaches their keys."""
    from google.api_core import exceptions as gexc

    member = {
        "uid": principal.subject,
        "role": principal.role.name,
        "updated_at": now,
        "updated_by": principal.subject,
    }
    with contextlib.suppress(gexc.AlreadyExists, gexc.Conflict):
        paths.members(principal.tenant).document(principal.subject).create(member)


def _creator_holds(data: dict[str, Any]) -> bool:
    """Whether the key's creator is still a member with at least the key's role."""
    member = paths.members(str(data["tenant"])).document(str(data["created_by"])).get()
    role = str((member.to_dict() or {}).get("role"))
    return member.exists and role in Role.__members__ and Role[role] >= Role[str(data["role"])]


def list_keys(*, principal: Principal) -> dict[str, Any]:
    """The tenant's keys (active, expired and revoked), newest first; never a secret or a hash."""
    found = sorted(_tenant_keys(principal.tenant), key=lambda d: d["created_at"], reverse=True)
    return {"items": [view(d) for d in found], "next_page_token": None}  # an `ApiKeyPage`


def load_key(tenant: str, key_id: str) -> tuple[Any, dict[str, Any]]:
    """The key of this tenant; 404 for another tenant's, unknown or malformed ids."""
    if not paths.KEY_ID_RE.fullmatch(key_id):
        raise NotFound(f"API key {key_id[:40]} not found", code="api_key_not_found")
    ref = paths.api_key_ref(key_id)
    snapshot = ref.get()
    data = snapshot.to_dict() or {}
    if not snapshot.exists or data.get("tenant") != tenant:
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
    return ref, data


def revoke_key(*, principal: Principal, key_id: str) -> None:
    """Revoke a key now (revoking twice is fine); tokens exchanged for it stop within a minute."""
    require_person(principal, "revoking an API key")
    ref, data = load_key(principal.tenant, key_id)
    if data.get("revoked_at") is None:
        ref.update({"revoked_at": datetime.now(UTC), "revoked_by": principal.subject})
    forget(key_id)


# -- the check every request with an API-key token makes ----------------------------------------

_lock = threading.Lock()
_seen: dict[str, tuple[float, bool]] = {}  # key id -> (monotonic time looked up, usable)


def forget(key_id: str | None = None) -> None:
    """Drop cached key states (one, or all: tests)."""
    with _lock:
        if key_id is None:
            _seen.clear()
        else:
            _seen.pop(key_id, None)


def _usable(principal: Principal) -> bool:
    assert principal.key_id is not None
    snapshot = paths.api_key_ref(principal.key_id).get()
    data = snapshot.to_dict() or {}
    return (
        snapshot.exists
        and data.get("tenant") == principal.tenant
        and data.get("role") == principal.role.name
        and status(data) == "active"
        and _creator_holds(data)
    )


def check_active(principal: Principal) -> None:
    """401 api_key_revoked when the key behind an API-key token is revoked or expired."""
    if principal.credential != "api_key" or principal.key_id is None:
        return
    now = time.monotonic()
    cached = _seen.get(principal.key_id)
    if cached is None or now - cached[0] >= settings().api_key_check_s:
        usable = _usable(principal)
        with _lock:
            if len(_seen) > 10_000:
                _seen.clear()
            _seen[principal.key_id] = (now, usable)
    else:
        usable = cached[1]
    if not usable:
        raise ApiKeyRevoked(
            "the API key this token was exchanged for is revoked or expired",
            headers={"WWW-Authenticate": 'Bearer realm="promptopt", error="invalid_token"'},
        )


def verify_secret(secret: str) -> tuple[Any, dict[str, Any]]:
    """The key record matching a presented secret; InvalidApiKey for anything else."""
    key_id = parse(secret)
    if key_id is None:
        raise InvalidApiKey("the API key is not valid")
    ref = paths.api_key_ref(key_id)
    snapshot = ref.get()
    data = snapshot.to_dict() or {}
    if not snapshot.exists or not hmac.compare_digest(str(data.get("hash", "")), digest(secret)):
        raise InvalidApiKey("the API key is not valid")
    if status(data) != "active":
        raise InvalidApiKey("the API key is not valid (revoked or expired)")
    if not _creator_holds(data):
        raise InvalidApiKey("the API key is not valid (its creator no longer holds its role)")
    return ref, data
