"""The prompts API through each function's real app, against the Firestore emulator."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.integration

BODY = {"name": "qa", "system_prompt": "Answer briefly.", "output_prompt": "Q: {input}\nA:"}


def create(api: Api, tenant: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    return api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json=body or BODY, **kw)


def update(api: Api, tenant: str, pid: str, body: dict[str, Any], if_match: str | None) -> Any:
    headers = {"If-Match": if_match} if if_match else {}
    return api.call(
        "prompts_update", "PUT", f"/api/v1/prompts/{pid}", tenant=tenant, json=body, headers=headers
    )


def test_create_returns_version_one(api: Api, tenant: str) -> None:
    r = create(api, tenant)
    assert r.status_code == 201
    body = r.get_json()
    assert body["version"] == 1
    assert body["parent_id"] is None
    assert body["variables"] == ["input"]
    assert body["created_by"] == "user-1"
    assert r.headers["ETag"] == '"v1"'
    assert r.headers["Location"] == f"/api/v1/prompts/{body['prompt_id']}"


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        ({"system_prompt": "x"}, "validation_failed", 400),
        ({"output_prompt": "no placeholder here"}, "validation_failed", 400),
        ({"output_prompt": "{input.attr}"}, "validation_failed", 400),
        ({"output_prompt": "{input!r}"}, "validation_failed", 400),
        ({"output_prompt": "{}"}, "validation_failed", 400),
        ({"output_prompt": "unbalanced {input"}, "validation_failed", 400),
        ({"output_prompt": "{input}", "surprise": 1}, "validation_failed", 400),
        ({"output_prompt": "{input}", "name": "x" * 201}, "validation_failed", 400),
        ({"output_prompt": "{input}", "metadata": {"k": "v" * 20_000}}, "validation_failed", 400),
        ({"output_prompt": "{input}", "metadata": {"nested": {"a": 1}}}, "validation_failed", 400),
        ({"output_prompt": "x" * 50_001 + "{input}"}, "validation_failed", 400),
        ([1, 2], "validation_failed", 400),
    ],
)
def test_create_rejects_bad_bodies(api: Api, tenant: str, body: Any, code: str, status: int) -> None:
    r = create(api, tenant, body)
    assert r.status_code == status
    assert r.content_type == "application/problem+json"
    problem = r.get_json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["errors"]


def test_create_rejects_malformed_transport(api: Api, tenant: str) -> None:
    r = api.call(
        "prompts_create",
        "POST",
        "/api/v1/prompts",
        tenant=tenant,
        data="{nope",
        content_type="application/json",
    )
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_json")
    r = api.call(
        "prompts_create",
        "POST",
        "/api/v1/prompts",
        tenant=tenant,
        data="a=b",
        content_type="application/x-www-form-urlencoded",
    )
    assert (r.status_code, r.get_json()["code"]) == (415, "json_required")
    big = '{"output_prompt": "' + "x" * 1_100_000 + '{input}"}'
    r = api.call(
        "prompts_create", "POST", "/api/v1/prompts", tenant=tenant, data=big, content_type="application/json"
    )
    assert (r.status_code, r.get_json()["code"]) == (413, "body_too_large")
    r = api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant)
    assert r.status_code == 400


def test_get_latest_by_version_and_by_label(api: Api, tenant: str) -> None:
    pid = create(api, tenant).get_json()["prompt_id"]
    assert update(api, tenant, pid, {"system_prompt": "Be exact."}, '"v1"').status_code == 200
    path = f"/api/v1/prompts/{pid}"
    latest = api.call("prompts_get", "GET", path, tenant=tenant, role="viewer")
    assert latest.get_json()["version"] == 2
    assert latest.headers["ETag"] == '"v2"'
    first = api.call("prompts_get", "GET", path, tenant=tenant, query_string={"version": 1}).get_json()
    assert first["system_prompt"] == "Answer briefly."
    label = api.call(
        "prompts_label_set", "PUT", f"{path}/labels/production", tenant=tenant, json={"version": 1}
    )
    assert label.get_json()["labels"] == {"production": 1}
    by_label = api.call("prompts_get", "GET", path, tenant=tenant, query_string={"label": "production"})
    assert by_label.get_json()["version"] == 1
    assert by_label.get_json()["labels"] == ["production"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"version": 9}, 404, "version_not_found"),
        ({"label": "staging"}, 404, "label_not_found"),
        ({"label": "Bad Label"}, 400, "validation_failed"),
        ({"version": 1, "label": "production"}, 400, "validation_failed"),
        ({"version": "abc"}, 400, "validation_failed"),
        ({"version": 0}, 400, "validation_failed"),
        ({"unknown": 1}, 400, "validation_failed"),
    ],
)
def test_get_errors(api: Api, tenant: str, query: dict[str, Any], status: int, code: str) -> None:
    pid = create(api, tenant).get_json()["prompt_id"]
    r = api.call("prompts_get", "GET", f"/api/v1/prompts/{pid}", tenant=tenant, query_string=query)
    assert (r.status_code, r.get_json()["code"]) == (status, code)


@pytest.mark.parametrize("pid", ["pr_00000000000000000000", "..", "__x__", "x" * 2000, "pr_%2e%2e"])
def test_unknown_or_impossible_ids_are_404(api: Api, tenant: str, pid: str) -> None:
    r = api.call("prompts_get", "GET", f"/api/v1/prompts/{pid}", tenant=tenant)
    assert r.status_code == 404
    assert r.get_json()["code"] in {"prompt_not_found", "route_not_found"}


def test_update_needs_current_etag(api: Api, tenant: str) -> None:
    pid = create(api, tenant).get_json()["prompt_id"]
    r = update(api, tenant, pid, {"system_prompt": "x"}, None)
    assert (r.status_code, r.get_json()["code"]) == (428, "if_match_required")
    r = update(api, tenant, pid, {"system_prompt": "x"}, "v1")
    assert (r.status_code, r.get_json()["code"]) == (412, "bad_etag")
    r = update(api, tenant, pid, {"output_prompt": "Question: {input}", "message": "reword"}, '"v1"')
    assert r.status_code == 200
    body = r.get_json()
    assert (body["version"], body["parent_id"]) == (2, f"{pid}@1")
    assert body["system_prompt"] == "Answer briefly."  # kept from the base version
    assert body["provenance"] == {"source": "user", "message": "reword", "details": None}
    stale = update(api, tenant, pid, {"system_prompt": "y"}, '"v1"')
    assert stale.status_code == 412
    assert stale.get_json()["extra"]["current_etag"] == '"v2"'
    star = update(api, tenant, pid, {"system_prompt": "z"}, "*")
    assert (star.status_code, star.get_json()["parent_id"]) == (200, f"{pid}@2")
    empty = update(api, tenant, pid, {"message": "nothing else"}, '"v3"')
    assert empty.status_code == 400
    missing = update(api, tenant, "pr_00000000000000000000", {"system_prompt": "x"}, '"v1"')
    assert missing.status_code == 404


def test_concurrent_updates_with_one_etag_have_exactly_one_winner(api: Api, tenant: str) -> None:
    pid = create(api, tenant).get_json()["prompt_id"]
    app = api.client("prompts_update").application
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        r = client.put(
            f"/api/v1/prompts/{pid}",
            json={"system_prompt": f"writer {i}"},
            headers={"If-Match": '"v1"', **_claims(tenant)},
        )
        statuses.append(r.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [412] * 7
    versions = api.call(
        "prompts_versions", "GET", f"/api/v1/prompts/{pid}/versions", tenant=tenant
    ).get_json()
    assert [v["version"] for v in versions["items"]] == [2, 1]


def _claims(tenant: str) -> dict[str, str]:
    from tests.support import claims_header

    return claims_header(tenant, "editor")


def test_idempotent_create_replays_and_refuses_other_bodies(api: Api, tenant: str) -> None:
    key = {"Idempotency-Key": "create-qa-1"}
    first = create(api, tenant, headers=key)
    again = create(api, tenant, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"]
    other = create(api, tenant, {**BODY, "name": "other"}, headers=key)
    assert (other.status_code, other.get_json()["code"]) == (422, "idempotency_key_reused")
    listed = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant).get_json()
    assert len(listed["items"]) == 1
    # The same key in another tenant is another key.
    elsewhere = create(api, tenant + "x", headers=key)
    assert elsewhere.get_json()["prompt_id"] != first.get_json()["prompt_id"]


def test_idempotency_key_is_released_after_an_error(api: Api, tenant: str) -> None:
    key = {"Idempotency-Key": "retry-after-fix"}
    bad = create(api, tenant, {"output_prompt": "no placeholder"}, headers=key)
    assert bad.status_code == 400
    assert create(api, tenant, {"output_prompt": "no placeholder"}, headers=key).status_code == 400
    assert create(api, tenant, headers={"Idempotency-Key": "x" * 300}).status_code == 400


def test_concurrent_idempotent_creates_make_one_prompt(api: Api, tenant: str) -> None:
    app = api.client("prompts_create").application
    results: list[tuple[int, str | None]] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        client = app.test_client()
        barrier.wait()
        r = client.post("/api/v1/prompts", json=BODY, headers={"Idempotency-Key": "race", **_claims(tenant)})
        results.append((r.status_code, (r.get_json() or {}).get("prompt_id")))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = {pid for status, pid in results if status == 201}
    assert len(created) == 1
    assert all(status in (201, 409) for status, _ in results)
    listed = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant).get_json()
    assert len(listed["items"]) == 1


def test_list_newest_first_with_pages_and_filters(api: Api, tenant: str) -> None:
    ids = [create(api, tenant, {**BODY, "name": f"p{i % 2}"}).get_json()["prompt_id"] for i in range(5)]
    seen: list[str] = []
    token = None
    for _ in range(5):
        query: dict[str, Any] = {"page_size": 2}
        if token:
            query["page_token"] = token
        page = api.call(
            "prompts_list", "GET", "/api/v1/prompts", tenant=tenant, role="viewer", query_string=query
        ).get_json()
        seen += [p["prompt_id"] for p in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == list(reversed(ids))
    named = api.call(
        "prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"name": "p0"}
    ).get_json()
    assert [p["prompt_id"] for p in named["items"]] == [ids[4], ids[2], ids[0]]
    api.call(
        "prompts_label_set",
        "PUT",
        f"/api/v1/prompts/{ids[1]}/labels/staging",
        tenant=tenant,
        json={"version": 1},
    )
    labelled = api.call(
        "prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"label": "staging"}
    ).get_json()
    assert [p["prompt_id"] for p in labelled["items"]] == [ids[1]]
    assert labelled["items"][0]["labels"] == {"staging": 1}


@pytest.mark.parametrize(
    "query",
    [{"page_size": 0}, {"page_size": 101}, {"page_token": "garbage!"}, {"page_size": 1, "sort": "x"}],
)
def test_list_rejects_bad_paging(api: Api, tenant: str, query: dict[str, Any]) -> None:
    r = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string=query)
    assert r.status_code == 400


def test_page_token_is_bound_to_its_query(api: Api, tenant: str) -> None:
    for _ in range(3):
        create(api, tenant)
    token = api.call(
        "prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"page_size": 1}
    ).get_json()["next_page_token"]
    r = api.call(
        "prompts_list",
        "GET",
        "/api/v1/prompts",
        tenant=tenant,
        query_string={"page_token": token, "name": "qa"},
    )
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_page_token")


def test_versions_lineage_and_labels(api: Api, tenant: str) -> None:
    pid = create(api, tenant).get_json()["prompt_id"]
    for n in range(1, 4):
        assert update(api, tenant, pid, {"system_prompt": f"rev {n}"}, f'"v{n}"').status_code == 200
    path = f"/api/v1/prompts/{pid}"
    api.call("prompts_label_set", "PUT", f"{path}/labels/production", tenant=tenant, json={"version": 2})
    api.call("prompts_label_set", "PUT", f"{path}/labels/staging", tenant=tenant, json={"version": 4})
    moved = api.call(
        "prompts_label_set", "PUT", f"{path}/labels/production", tenant=tenant, json={"version": 3}
    )
    assert moved.get_json()["labels"] == {"production": 3, "staging": 4}
    page1 = api.call(
        "prompts_versions", "GET", f"{path}/versions", tenant=tenant, query_string={"page_size": 3}
    ).get_json()
    page2 = api.call(
        "prompts_versions",
        "GET",
        f"{path}/versions",
        tenant=tenant,
        query_string={"page_size": 3, "page_token": page1["next_page_token"]},
    ).get_json()
    versions = page1["items"] + page2["items"]
    assert [v["version"] for v in versions] == [4, 3, 2, 1]
    assert [v["parent_id"] for v in versions] == [f"{pid}@3", f"{pid}@2", f"{pid}@1", None]
    assert [v["labels"] for v in versions] == [["staging"], ["production"], [], []]
    assert page2["next_page_token"] is None
    removed = api.call("prompts_label_delete", "DELETE", f"{path}/labels/staging", tenant=tenant)
    assert removed.get_json()["labels"] == {"production": 3}
    again = api.call("prompts_label_delete", "DELETE", f"{path}/labels/staging", tenant=tenant)
    assert (again.status_code, again.get_json()["code"]) == (404, "label_not_found")
    nowhere = api.call("prompts_label_set", "PUT", f"{path}/labels/qa", tenant=tenant, json={"version": 9})
    assert nowhere.status_code == 404
    bad = api.call("prompts_label_set", "PUT", f"{path}/labels/Not-OK", tenant=tenant, json={"version": 1})
    assert (bad.status_code, bad.get_json()["code"]) == (400, "invalid_label")


def test_health_is_public(api: Api) -> None:
    r = api.call("health", "GET", "/api/v1/health")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ok"


def test_function_refuses_paths_and_methods_it_does_not_serve(api: Api, tenant: str) -> None:
    r = api.call("prompts_get", "GET", "/api/v1/other", tenant=tenant)
    assert (r.status_code, r.get_json()["code"]) == (404, "route_not_found")
    r = api.call("prompts_get", "POST", "/api/v1/prompts/pr_00000000000000000000", tenant=tenant)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"


def test_an_expired_idempotency_key_is_free_again(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptopt import config

    monkeypatch.setenv("PROMPTOPT_IDEMPOTENCY_TTL_S", "0")
    config.reset()
    try:
        key = {"Idempotency-Key": "short-lived"}
        first = create(api, tenant, headers=key).get_json()["prompt_id"]
        second = create(api, tenant, {**BODY, "name": "another"}, headers=key)
        assert second.status_code == 201
        assert second.get_json()["prompt_id"] != first
    finally:
        monkeypatch.delenv("PROMPTOPT_IDEMPOTENCY_TTL_S")
        config.reset()


def test_create_is_idempotent_even_if_the_key_record_is_lost(api: Api, tenant: str) -> None:
    """A crash after the commit but before the response was recorded must not create twice."""
    from promptopt.clients import firestore_client

    key = {"Idempotency-Key": "lost-record"}
    first = create(api, tenant, headers=key).get_json()["prompt_id"]
    for doc in firestore_client().collection(f"tenants/{tenant}/idempotency").stream():
        doc.reference.delete()  # as if the response was never recorded
    again = create(api, tenant, headers=key)
    assert again.status_code == 201
    assert again.get_json()["prompt_id"] == first
    listed = api.call("prompts_list", "GET", "/api/v1/prompts", tenant=tenant).get_json()
    assert len(listed["items"]) == 1


@pytest.mark.parametrize(
    "cursor",
    [[], ["x", "y"], [5, "x"], ["2026-01-01T00:00:00+00:00"], [None, None], "not-a-list"],
)
def test_hand_made_page_tokens_are_400(api: Api, tenant: str, cursor: object) -> None:
    import base64
    import json as _json

    from promptopt.store.pagination import _fingerprint, encode_token

    scope: dict[str, Any] = {"name": None, "label": None}
    raw = _json.dumps({"c": cursor, "s": _fingerprint(scope)}).encode()
    unsigned = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    # Unsigned, and (defence in depth) signed by this deployment yet holding a malformed cursor.
    for token in (unsigned, encode_token(cursor, scope, tenant=tenant)):  # type: ignore[arg-type]
        r = api.call(
            "prompts_list", "GET", "/api/v1/prompts", tenant=tenant, query_string={"page_token": token}
        )
        assert (r.status_code, r.get_json()["code"]) == (400, "invalid_page_token")
    pid = create(api, tenant).get_json()["prompt_id"]
    token = encode_token(["abc"], {"prompt": pid}, tenant=tenant)
    r = api.call(
        "prompts_versions",
        "GET",
        f"/api/v1/prompts/{pid}/versions",
        tenant=tenant,
        query_string={"page_token": token},
    )
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_page_token")


def test_hostile_bodies_and_stray_query_parameters_are_400(api: Api, tenant: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r = api.call(
        "prompts_create", "POST", "/api/v1/prompts", tenant=tenant, data=deep, content_type="application/json"
    )
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_json")
    r = api.call(
        "prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json=BODY, query_string={"debug": "1"}
    )
    assert (r.status_code, r.get_json()["code"]) == (400, "unknown_query_parameter")
