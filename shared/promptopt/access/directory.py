"""Where a person's tenant and role claims are kept: Firebase Auth in the cloud, a file locally.

In the cloud the claims are Firebase Auth / Identity Platform custom claims, set with firebase-admin
(the members functions hold roles/firebaseauth.admin); they reach ID tokens issued after the change,
so a removed or demoted member also has their refresh tokens revoked.

Locally the dev issuer keeps the same claims in a JSON registry (`PROMPTOPT_DEV_MEMBERS_FILE`, in
the dev issuer's folder; `promptopt.local.dev_issuer.registered_claims` reads it when minting).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptopt.auth import ROLE_CLAIM, TENANT_CLAIM
from promptopt.errors import NotFound

MEMBERS_FILE_ENV = "PROMPTOPT_DEV_MEMBERS_FILE"


@dataclass(frozen=True)
class Claims:
    """A person's tenant and role, as their tokens carry them (None: not set)."""

    tenant: str | None
    role: str | None
    email: str | None = None


def _registry() -> Path | None:
    value = os.environ.get(MEMBERS_FILE_ENV)
    return Path(value) if value else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[dict[str, Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        yield data
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _firebase() -> Any:
    import firebase_admin
    from firebase_admin import auth

    try:
        firebase_admin.get_app()
    except ValueError:
        firebase_admin.initialize_app()
    return auth


def current(uid: str) -> Claims:
    """The claims a person's tokens carry now; 404 when the identity provider has no such user."""
    path = _registry()
    if path is not None:
        with _locked(path) as data:
            entry = data.get(uid) or {}
        return Claims(entry.get(TENANT_CLAIM), entry.get(ROLE_CLAIM), entry.get("email"))
    auth = _firebase()
    try:
        user = auth.get_user(uid)
    except auth.UserNotFoundError:
        raise NotFound(f"no user {uid[:40]} in the identity provider", code="user_not_found") from None
    claims = dict(user.custom_claims or {})
    return Claims(claims.get(TENANT_CLAIM), claims.get(ROLE_CLAIM), user.email)


def set_claims(uid: str, tenant: str, role: str, email: str | None = None) -> None:
    """Give the person this tenant and role (other custom claims are kept)."""
    path = _registry()
    if path is not None:
        with _locked(path) as data:
            entry = data.setdefault(uid, {})
            entry.update({TENANT_CLAIM: tenant, ROLE_CLAIM: role})
            if email:
                entry["email"] = email
        return
    auth = _firebase()
    user = auth.get_user(uid)
    claims = dict(user.custom_claims or {})
    demoted = claims.get(ROLE_CLAIM) not in (None, role)
    claims.update({TENANT_CLAIM: tenant, ROLE_CLAIM: role})
    auth.set_custom_user_claims(uid, claims)
    if demoted:  # the old role stays in ID tokens until they are refreshed: make them sign in again
        auth.revoke_refresh_tokens(uid)


def remove(uid: str, tenant: str) -> None:
    """Take the person out of the tenant (only if their claims name it)."""
    path = _registry()
    if path is not None:
        with _locked(path) as data:
            if (data.get(uid) or {}).get(TENANT_CLAIM) == tenant:
                data.pop(uid, None)
        return
    auth = _firebase()
    user = auth.get_user(uid)
    claims = dict(user.custom_claims or {})
    if claims.get(TENANT_CLAIM) != tenant:
        return
    claims.pop(TENANT_CLAIM, None)
    claims.pop(ROLE_CLAIM, None)
    auth.set_custom_user_claims(uid, claims or None)
    auth.revoke_refresh_tokens(uid)
