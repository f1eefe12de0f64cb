"""API keys: created with the secret shown once, exchanged for tokens of their tenant and role,
revoked with effect on tokens already issued, and never more powerful than their creator."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from promptopt.access import keys, paths
from promptopt.access.models import ApiKeyCreated
from tests.conftest import Api
from tests.integration.access.conftest import forwarded, verify
from tests.support import claims_header

pytestmark = pytest.mark.integration


def test_create_shows_the_secret_once_and_stores_only_its_hash(
    api: Api, tenant: str, make_key: Callable[..., dict[str, Any]]
) -> None:
    created = make_key(tenant, "editor")
    assert list(created) == list(ApiKeyCreated.model_fields)  # the plain dict answer is the model's
    assert created == json.loads(ApiKeyCreated.model_validate(created).model_dump_json())
    assert created["secret"].startswith("pok_" + created["key_id"] + "_")
    assert created["status"] == "active"
    stored = paths.api_key_ref(created["key_id"]).get().to_dict() or {}
    assert created["secret"] not in str(stored)
    assert stored["hash"] == keys.digest(created["secret"])
    listed = api.call("api_keys_list", "GET", "/api/v1/api-keys", tenant=tenant).get_json()
    assert [k["key_id"] for k in listed["items"]] == [created["key_id"]]
    assert "secret" not in listed["items"][0]
    assert "hash" not in listed["items"][0]
    assert created["secret"] not in str(listed)


def test_exchange_contract(
    tenant: str,
    make_key: Callable[..., dict[str, Any]],
    exchange: Callable[..., Any],
    access_env: dict[str, str],
) -> None:
    created = make_key(tenant, "viewer")
    r = exchange(created["secret"])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert set(body) == {"token", "token_type", "expires_in", "tenant", "role"}
    assert body["token_type"] == "Bearer"
    assert 3500 <= body["expires_in"] <= 3600
    assert (body["tenant"], body["role"]) == (tenant, "viewer")
    claims = verify(body["token"], access_env["public_pem"])
    assert claims["tenant"] == tenant
    assert claims["role"] == "viewer"
    assert claims["key_id"] == created["key_id"]
    assert claims["exp"] - claims["iat"] <= 3600


def test_token_lives_no_longer_than_its_key(
    tenant: str, make_key: Callable[..., dict[str, Any]], exchange: Callable[..., Any]
) -> None:
    created = make_key(tenant, "viewer", expires_in_days=1)
    paths.api_key_ref(created["key_id"]).update({"expires_at": datetime.now(UTC) + timedelta(seconds=600)})
    body = exchange(created["secret"]).get_json()
    assert 590 <= body["expires_in"] <= 600


@pytest.mark.parametrize("case", ["garbage", "unknown_id", "wrong_secret", "revoked", "expired"])
def test_a_bad_key_is_one_401(
    api: Api,
    tenant: str,
    case: str,
    make_key: Callable[..., dict[str, Any]],
    exchange: Callable[..., Any],
) -> None:
    created = make_key(tenant, "editor")
    secret = created["secret"]
    if case == "garbage":
        secret = "not-a-key"
    elif case == "unknown_id":
        secret = "pok_" + secrets.token_hex(8) + "_" + "x" * 43
    elif case == "wrong_secret":
        secret = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    elif case == "revoked":
        r = api.call("api_keys_revoke", "DELETE", f"/api/v1/api-keys/{created['key_id']}", tenant=tenant)
        assert r.status_code == 204
    else:
        paths.api_key_ref(created["key_id"]).update({"expires_at": datetime.now(UTC) - timedelta(seconds=1)})
    r = exchange(secret, client=f"198.51.100.{hash(case) % 200}")
    assert r.status_code == 401
    assert r.get_json()["code"] == "invalid_api_key"


def test_failed_exchanges_are_logged_without_the_key(
    tenant: str,
    make_key: Callable[..., dict[str, Any]],
    exchange: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = make_key(tenant, "editor")["secret"]
    wrong = secret[:-6] + "zzzzzz"
    with caplog.at_level("INFO"):
        assert exchange(wrong, client="198.51.100.250").status_code == 401
    logged = " ".join(str(getattr(r, "fields", "")) + r.getMessage() for r in caplog.records)
    assert "refused an API key exchange" in logged
    assert wrong not in logged
    assert wrong[20:] not in logged


def test_failed_exchanges_are_rate_limited_per_client(exchange: Callable[..., Any]) -> None:
    client = "192.0.2.99"
    guess = "pok_" + secrets.token_hex(8) + "_" + "y" * 43
    statuses = [exchange(guess, client=client).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    refused = exchange(guess, client=client)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Remaining"] == "0"


def test_a_key_token_acts_with_its_role_in_its_tenant_only(
    api: Api,
    tenant: str,
    make_key: Callable[..., dict[str, Any]],
    exchange: Callable[..., Any],
) -> None:
    token = exchange(make_key(tenant, "viewer")["secret"]).get_json()["token"]
    headers = forwarded(token)
    me = api.call("me", "GET", "/api/v1/me", headers=headers).get_json()
    assert me["credential"] == "api_key"
    assert (me["tenant"], me["role"]) == (tenant, "viewer")
    assert api.call("prompts_list", "GET", "/api/v1/prompts", headers=headers).status_code == 200
    denied = api.call(
        "prompts_create", "POST", "/api/v1/prompts", headers=headers, json={"output_prompt": "{input}"}
    )
    assert denied.status_code == 403
    other = api.call(
        "prompts_create",
        "POST",
        "/api/v1/prompts",
        tenant="t-someone-else",
        json={"output_prompt": "{input}"},
    )
    pid = other.get_json()["prompt_id"]
    assert api.call("prompts_get", "GET", f"/api/v1/prompts/{pid}", headers=headers).status_code == 404


def test_revocation_reaches_tokens_already_issued(
    api: Api,
    tenant: str,
    make_key: Callable[..., dict[str, Any]],
    exchange: Callable[..., Any],
) -> None:
    created = make_key(tenant, "editor")
    headers = forwarded(exchange(created["secret"]).get_json()["token"])
    assert api.call("me", "GET", "/api/v1/me", headers=headers).status_code == 200
    api.call("api_keys_revoke", "DELETE", f"/api/v1/api-keys/{created['key_id']}", tenant=tenant)
    keys.forget()  # what api_key_check_s (30 s) does on every instance
    refused = api.call("me", "GET", "/api/v1/me", headers=headers)
    assert refused.status_code == 401
    assert refused.get_json()["code"] == "api_key_revoked"
    listed = api.call("api_keys_list", "GET", "/api/v1/api-keys", tenant=tenant).get_json()
    assert listed["items"][0]["status"] == "revoked"


def test_another_tenants_key_is_not_found(
    api: Api, tenant: str, make_key: Callable[..., dict[str, Any]]
) -> None:
    created = make_key("t-other-" + tenant[2:], "editor")
    r = api.call("api_keys_revoke", "DELETE", f"/api/v1/api-keys/{created['key_id']}", tenant=tenant)
    assert r.status_code == 404
    listed = api.call("api_keys_list", "GET", "/api/v1/api-keys", tenant=tenant).get_json()
    assert listed["items"] == []


def test_only_admins_and_only_people_manage_keys(
    api: Api,
    tenant: str,
    make_key: Callable[..., dict[str, Any]],
    exchange: Callable[..., Any],
) -> None:
    body = {"name": "x", "role": "viewer"}
    editor = api.call("api_keys_create", "POST", "/api/v1/api-keys", tenant=tenant, role="editor", json=body)
    assert editor.status_code == 403
    admin_key = exchange(make_key(tenant, "admin")["secret"]).get_json()["token"]
    by_key = api.call("api_keys_create", "POST", "/api/v1/api-keys", headers=forwarded(admin_key), json=body)
    assert by_key.status_code == 403
    assert by_key.get_json()["code"] == "person_required"


def test_a_key_above_its_creators_role_stops_working(
    api: Api,
    tenant: str,
    make_key: Callable[..., dict[str, Any]],
    exchange: Callable[..., Any],
) -> None:
    created = make_key(tenant, "admin", subject="founder")
    headers = forwarded(exchange(created["secret"]).get_json()["token"])
    # Another admin demotes the key's creator to editor: the admin key is now above its creator.
    r = api.call(
        "members_set", "PUT", "/api/v1/members/founder",
        headers=claims_header(tenant, "admin", "second-admin"), json={"role": "editor"},
    )  # fmt: skip
    assert r.status_code == 200, r.get_json()
    keys.forget()
    assert exchange(created["secret"]).get_json()["code"] == "invalid_api_key"
    assert api.call("me", "GET", "/api/v1/me", headers=headers).get_json()["code"] == "api_key_revoked"


def test_only_active_keys_count_against_the_tenants_cap(
    api: Api, tenant: str, make_key: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "MAX_ACTIVE_KEYS", 3)
    revoked, expired, _active = (make_key(tenant, "viewer") for _ in range(3))

    def create() -> Any:
        return api.call(
            "api_keys_create",
            "POST",
            "/api/v1/api-keys",
            tenant=tenant,
            json={"name": "more", "role": "viewer"},
        )

    refused = create()
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["code"] == "too_many_api_keys"
    api.call("api_keys_revoke", "DELETE", f"/api/v1/api-keys/{revoked['key_id']}", tenant=tenant)
    paths.api_key_ref(expired["key_id"]).update({"expires_at": datetime.now(UTC) - timedelta(seconds=1)})
    assert create().status_code == 201
    assert create().status_code == 201
    assert create().status_code == 409
