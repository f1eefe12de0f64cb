"""Tenant isolation and roles on every prompt route (identity as the gateway forwards it)."""

from __future__ import annotations

from typing import Any

import pytest

from promptopt.auth import USERINFO_HEADER, encode_userinfo
from promptopt.manifest import load_manifest
from tests.conftest import Api
from tests.support import claims_header

pytestmark = pytest.mark.integration

ROLES = {"viewer": 1, "editor": 2, "admin": 3}


def _routes() -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(function, method, path with {prompt_id}, body) for every prompt route in the manifest."""
    bodies = {
        "prompts_create": {"output_prompt": "{input}"},
        "prompts_update": {"system_prompt": "x"},
        "prompts_patch": {"name": "x"},
        "prompts_label_set": {"version": 1},
    }
    out = []
    for spec in load_manifest():
        if spec.is_http and spec.http.path.startswith("/api/v1/prompts"):
            path = spec.http.path.replace("{label}", "production")
            out.append((spec.name, spec.http.method, path, bodies.get(spec.name)))
    return out


ROUTES = _routes()
IF_MATCH = {"prompts_update", "prompts_patch"}
# The owned prompt carries a label, so archiving or deleting it is refused after the role check.
IN_USE = {"prompts_archive", "prompts_delete"}


@pytest.fixture
def owned(api: Api, tenant: str) -> str:
    r = api.call(
        "prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json={"output_prompt": "{input}"}
    )
    pid = r.get_json()["prompt_id"]
    api.call(
        "prompts_label_set",
        "PUT",
        f"/api/v1/prompts/{pid}/labels/production",
        tenant=tenant,
        json={"version": 1},
    )
    return pid


def test_every_prompt_route_is_covered() -> None:
    assert {r[0] for r in ROUTES} >= {
        "prompts_create",
        "prompts_get",
        "prompts_update",
        "prompts_list",
        "prompts_versions",
        "prompts_label_set",
        "prompts_label_delete",
        "prompts_patch",
        "prompts_archive",
        "prompts_unarchive",
        "prompts_delete",
    }


@pytest.mark.parametrize(("function", "method", "path", "body"), ROUTES, ids=[r[0] for r in ROUTES])
def test_another_tenant_sees_nothing(
    api: Api, owned: str, function: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    intruder = "intruder-" + owned[-6:]
    headers = {"If-Match": '"v1"'} if function in IF_MATCH else {}
    r = api.call(
        function,
        method,
        path.replace("{prompt_id}", owned),
        tenant=intruder,
        role="admin",
        json=body,
        headers=headers,
    )
    if "{prompt_id}" in path:
        assert r.status_code == 404, r.get_json()
        assert r.get_json()["code"] == "prompt_not_found"
    elif method == "GET":
        assert r.status_code == 200
        assert owned not in r.get_data(as_text=True)
    else:  # creating in one's own tenant is fine and never touches the owner's data
        assert r.status_code == 201


@pytest.mark.parametrize(("function", "method", "path", "body"), ROUTES, ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("role", list(ROLES))
def test_roles(
    api: Api,
    owned: str,
    tenant: str,
    role: str,
    function: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    needed = next(s.auth.min_role for s in load_manifest() if s.name == function)
    headers = {"If-Match": '"v1"'} if function in IF_MATCH else {}
    r = api.call(
        function,
        method,
        path.replace("{prompt_id}", owned),
        tenant=tenant,
        role=role,
        json=body,
        headers=headers,
    )
    if ROLES[role] < ROLES[str(needed)]:
        assert (r.status_code, r.get_json()["code"]) == (403, "role_too_low")
    elif function in IN_USE:
        assert (r.status_code, r.get_json()["code"]) == (409, "prompt_in_use")
    else:
        assert r.status_code in (200, 201), r.get_json()


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({USERINFO_HEADER: "%%%not-base64%%%"}, 401, "bad_identity"),
        ({USERINFO_HEADER: encode_userinfo(["a", "list"])}, 401, "bad_identity"),  # type: ignore[arg-type]
        ({USERINFO_HEADER: encode_userinfo({"tenant": "t1", "role": "admin"})}, 401, "bad_identity"),
        ({USERINFO_HEADER: encode_userinfo({"sub": "u", "role": "admin"})}, 403, "no_tenant"),
        (
            {USERINFO_HEADER: encode_userinfo({"sub": "u", "tenant": "../etc", "role": "admin"})},
            403,
            "no_tenant",
        ),
        ({USERINFO_HEADER: encode_userinfo({"sub": "u", "tenant": "t1"})}, 403, "no_role"),
        (
            {USERINFO_HEADER: encode_userinfo({"sub": "u", "tenant": "t1", "role": "root"})},
            403,
            "unknown_role",
        ),
    ],
)
def test_bad_identities_are_refused(api: Api, headers: dict[str, str], status: int, code: str) -> None:
    r = api.call("prompts_list", "GET", "/api/v1/prompts", headers=headers)
    assert (r.status_code, r.get_json()["code"]) == (status, code)


def test_claims_header_helper_round_trips(api: Api, tenant: str) -> None:
    r = api.call("prompts_list", "GET", "/api/v1/prompts", headers=claims_header(tenant, "viewer"))
    assert r.status_code == 200
