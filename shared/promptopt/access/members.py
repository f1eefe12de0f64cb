"""A tenant's members: list them, set or remove a member's role; the last admin stays.

`tenants/{t}/members/{uid}` records each member's role and is what the listing reads; the
identity provider's claims (`directory`) are what tokens carry. A change is checked and written in
one Firestore transaction that reads every admin of the tenant, so two admins demoting each other
at once cannot leave the tenant without one; the claims are set after it commits (a failure there
is a 503 and the request can be repeated: both writes are idempotent).

An admin who acts before being recorded (made admin with `promptopt auth set-claims`) is recorded
by their first change, so the last-admin rule always counts them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptopt.access import directory, paths
from promptopt.access.keys import require_person
from promptopt.auth import Role
from promptopt.errors import Conflict, NotFound

if TYPE_CHECKING:
    from promptopt.auth import Principal

UID_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
_LIST_LIMIT = 1000
MAX_EMAIL_CHARS = 320  # MemberRole.email


class LastAdmin(Conflict):
    """The change would leave the tenant without an admin."""

    code = "last_admin"


def _check_uid(uid: str) -> None:
    if not UID_RE.fullmatch(uid):
        raise NotFound(f"member {uid[:40]} not found", code="member_not_found")


# The fields of `Member`: GET /members answers with plain dicts and needs no pydantic on its cold
# start (tests/unit/test_views.py ties this list to the model).
MEMBER_FIELDS = ("uid", "role", "email", "updated_at", "updated_by")


def view(data: dict[str, Any]) -> dict[str, Any]:
    """A member record as listed (a `Member`)."""
    return {name: data.get(name) for name in MEMBER_FIELDS}


def list_members(*, principal: Principal) -> dict[str, Any]:
    """Every recorded member, by uid (a `MemberPage`)."""
    found = [s.to_dict() or {} for s in paths.members(principal.tenant).limit(_LIST_LIMIT).stream()]
    return {"items": [view(m) for m in sorted(found, key=lambda m: m["uid"])], "next_page_token": None}


def _change(principal: Principal, uid: str, role: str | None, email: str | None) -> dict[str, Any] | None:
    """Record `uid`'s new role (None removes) in one transaction that keeps an admin."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    members = paths.members(principal.tenant)
    now = datetime.now(UTC)
    me = {"uid": principal.subject, "role": "admin", "updated_at": now, "updated_by": principal.subject}

    @firestore.transactional
    def run(transaction: Any) -> dict[str, Any] | None:
        admins = {
            s.id
            for s in members.where(filter=FieldFilter("role", "==", "admin")).stream(transaction=transaction)
        }
        target = members.document(uid).get(transaction=transaction)
        if (
            role is None and not target.exists and uid != principal.subject
        ):  # the caller is one, recorded or not
            raise NotFound(f"member {uid} not found", code="member_not_found")
        caller_known = principal.subject in admins
        admins.add(principal.subject)  # the caller is an admin (the route requires it)
        if role != "admin" and uid in admins and len(admins) == 1:
            raise LastAdmin("this would leave the tenant without an admin; make another member admin first")
        if not caller_known and principal.subject != uid:
            transaction.set(members.document(principal.subject), me)
        if role is None:
            transaction.delete(target.reference)
            return None
        doc = {"uid": uid, "role": role, "updated_at": now, "updated_by": principal.subject}
        previous = target.to_dict() or {}
        if email or previous.get("email"):
            doc["email"] = email or previous.get("email")
        transaction.set(target.reference, doc)
        return doc

    result: dict[str, Any] | None = run(members._client.transaction())
    return result


def plain_member_role(body: Any) -> tuple[str, str | None] | None:
    """(role, email) of a body that is plainly valid for MemberRole, else None.

    Such a body is read without building the model (no pydantic on this function's cold start);
    anything else goes through the model, which words the 400. tests/unit/test_views.py checks
    that both agree wherever this answers.
    """
    if not isinstance(body, dict) or "role" not in body or not body.keys() <= {"role", "email"}:
        return None
    role, email = body["role"], body.get("email")
    if not isinstance(role, str) or role not in Role.__members__:
        return None
    if email is not None and (not isinstance(email, str) or len(email) > MAX_EMAIL_CHARS):
        return None
    return role, email


def set_role(*, principal: Principal, uid: str, role: str, email: str | None = None) -> dict[str, Any]:
    """Make `uid` a member of the tenant with `role` (or change it); answers the `Member`."""
    require_person(principal, "changing members")
    _check_uid(uid)
    claims = directory.current(uid)
    if claims.tenant not in (None, principal.tenant):
        raise Conflict(
            f"user {uid} belongs to another tenant; they must leave it first", code="member_of_another_tenant"
        )
    doc = _change(principal, uid, role, email or claims.email)
    assert doc is not None
    directory.set_claims(uid, principal.tenant, role, email)
    return view(doc)


def remove(*, principal: Principal, uid: str) -> None:
    """Take `uid` out of the tenant (their role claims are cleared, refresh tokens revoked)."""
    require_person(principal, "changing members")
    _check_uid(uid)
    _change(principal, uid, None, None)
    directory.remove(uid, principal.tenant)
