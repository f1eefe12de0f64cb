"""Where access records live.

    api_keys/{key_id}                       an API key: tenant, role, hash of the secret, status
    tenants/{t}/members/{uid}               a member's role (mirrors the identity provider's claims)
    tenants/{t}/audit/{entry_id}            one write (Firestore TTL on expires_at)
    rate_limits/{scope}/rate_events/{id}    one admitted request of a rate limit (TTL on expires_at)

API keys sit in a top-level collection because the token exchange holds only the secret: the key
id is part of the secret, the tenant is not (a key does not reveal whose it is). Every read of
a key by a tenant's request filters on its `tenant` field.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from promptopt.clients import firestore_client
from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    from google.cloud.firestore import CollectionReference, DocumentReference

KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def api_keys() -> CollectionReference:
    """Every API key of every tenant (queries filter on `tenant`)."""
    return firestore_client().collection("api_keys")


def api_key_ref(key_id: str) -> DocumentReference:
    """One API key."""
    return api_keys().document(key_id)


def members(tenant: str) -> CollectionReference:
    """The tenant's members."""
    return tenant_collection(tenant, "members")


def audit(tenant: str) -> CollectionReference:
    """The tenant's audit log."""
    return tenant_collection(tenant, "audit")


def rate_events(scope: str) -> CollectionReference:
    """Admitted requests of one rate-limit scope (e.g. a tenant's inference calls)."""
    return firestore_client().collection("rate_limits").document(scope).collection("rate_events")
