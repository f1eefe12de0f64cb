"""Members: list, set and remove roles (the dev issuer's registry stands in for Firebase claims),
and the tenant always keeps an admin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Api
from tests.support import claims_header

pytestmark = pytest.mark.integration


def _as(tenant: str, subject: str, role: str = "admin") -> dict[str, str]:
    return claims_header(tenant, role, subject)


def _put(api: Api, tenant: str, caller: str, uid: str, role: str, **extra: str) -> object:
    return api.call(
        "members_set",
        "PUT",
        f"/api/v1/members/{uid}",
        headers=_as(tenant, caller),
        json={"role": role, **extra},
    )


def _delete(api: Api, tenant: str, caller: str, uid: str) -> object:
    return api.call("members_remove", "DELETE", f"/api/v1/members/{uid}", headers=_as(tenant, caller))


def test_set_list_and_remove_members(api: Api, tenant: str, access_env: dict[str, str]) -> None:
    set_ = _put(api, tenant, "root", "alice", "editor", email="alice@example.com")
    assert set_.status_code == 200, set_.get_json()  # type: ignore[attr-defined]
    assert set_.get_json()["role"] == "editor"  # type: ignore[attr-defined]
    registry = json.loads(Path(access_env["PROMPTOPT_DEV_MEMBERS_FILE"]).read_text())
    assert registry["alice"] == {"tenant": tenant, "role": "editor", "email": "alice@example.com"}
    listed = api.call("members_list", "GET", "/api/v1/members", headers=_as(tenant, "root")).get_json()
    assert {m["uid"]: m["role"] for m in listed["items"]} == {"alice": "editor", "root": "admin"}
    assert _delete(api, tenant, "root", "alice").status_code == 204  # type: ignore[attr-defined]
    assert "alice" not in json.loads(Path(access_env["PROMPTOPT_DEV_MEMBERS_FILE"]).read_text())
    assert _delete(api, tenant, "root", "alice").status_code == 404  # type: ignore[attr-defined]
    editor = api.call("members_list", "GET", "/api/v1/members", headers=_as(tenant, "bob", "editor"))
    assert editor.status_code == 403


def test_the_last_admin_cannot_be_removed_or_demoted(
    api: Api, tenant: str, access_env: dict[str, str]
) -> None:
    demote_self = _put(api, tenant, "root", "root", "viewer")
    assert (demote_self.status_code, demote_self.get_json()["code"]) == (409, "last_admin")  # type: ignore[attr-defined]
    remove_self = _delete(api, tenant, "root", "root")
    assert (remove_self.status_code, remove_self.get_json()["code"]) == (409, "last_admin")  # type: ignore[attr-defined]
    assert _put(api, tenant, "root", "carol", "admin").status_code == 200  # type: ignore[attr-defined]
    # With a second admin the first may step down; then carol is the last and stays one.
    assert _delete(api, tenant, "root", "root").status_code == 204  # type: ignore[attr-defined]
    last = _put(api, tenant, "carol", "carol", "editor")
    assert (last.status_code, last.get_json()["code"]) == (409, "last_admin")  # type: ignore[attr-defined]


def test_a_member_of_another_tenant_is_not_taken(api: Api, tenant: str, access_env: dict[str, str]) -> None:
    other = "t-other-" + tenant[2:]
    assert _put(api, other, "boss", "dave", "viewer").status_code == 200  # type: ignore[attr-defined]
    taken = _put(api, tenant, "root", "dave", "admin")
    assert (taken.status_code, taken.get_json()["code"]) == (409, "member_of_another_tenant")  # type: ignore[attr-defined]
    assert _delete(api, tenant, "root", "dave").status_code == 404  # type: ignore[attr-defined]
