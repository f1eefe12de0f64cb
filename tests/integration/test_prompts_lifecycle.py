"""Renaming (PATCH), archiving and deleting prompts, and sorted listings, against the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from promptopt.clients import firestore_client
from tests.conftest import Api
from tests.integration.experiments.conftest import Experiments, experiments, ingest  # noqa: F401

pytestmark = pytest.mark.integration

BODY = {"name": "qa", "system_prompt": "Answer briefly.", "output_prompt": "Q: {input}\nA:"}
P = "/api/v1/prompts"


def create(api: Api, tenant: str, **fields: Any) -> str:
    r = api.call("prompts_create", "POST", P, tenant=tenant, role="editor", json={**BODY, **fields})
    assert r.status_code == 201, r.get_data(as_text=True)
    return str(r.get_json()["prompt_id"])


def patch(api: Api, tenant: str, pid: str, body: Any, *, if_match: str | None = '"v1"', role: str = "editor"):  # type: ignore[no-untyped-def]
    headers = {"If-Match": if_match} if if_match else {}
    return api.call(
        "prompts_patch", "PATCH", f"{P}/{pid}", tenant=tenant, role=role, json=body, headers=headers
    )


def archive(api: Api, tenant: str, pid: str, *, role: str = "admin", undo: bool = False) -> Any:
    name, verb = ("prompts_unarchive", "unarchive") if undo else ("prompts_archive", "archive")
    return api.call(name, "POST", f"{P}/{pid}/{verb}", tenant=tenant, role=role)


def delete(api: Api, tenant: str, pid: str, *, role: str = "admin") -> Any:
    return api.call("prompts_delete", "DELETE", f"{P}/{pid}", tenant=tenant, role=role)


def listing(api: Api, tenant: str, **query: Any) -> Any:
    return api.call("prompts_list", "GET", P, tenant=tenant, role="viewer", query_string=query)


def versions(api: Api, tenant: str, pid: str) -> list[dict[str, Any]]:
    r = api.call("prompts_versions", "GET", f"{P}/{pid}/versions", tenant=tenant, role="viewer")
    assert r.status_code == 200
    return list(r.get_json()["items"])


# --- PATCH -------------------------------------------------------------------------------------


def test_patch_renames_without_a_new_version(api: Api, tenant: str) -> None:
    pid = create(api, tenant)
    r = patch(api, tenant, pid, {"name": "renamed", "description": "for support", "tags": ["support"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert (body["name"], body["description"], body["tags"], body["version"]) == (
        "renamed",
        "for support",
        ["support"],
        1,
    )
    assert r.headers["ETag"] == '"v1"'
    assert len(versions(api, tenant, pid)) == 1  # no version was made
    got = api.call("prompts_get", "GET", f"{P}/{pid}", tenant=tenant, role="viewer").get_json()
    assert (got["name"], got["version"], got["output_prompt"]) == ("renamed", 1, BODY["output_prompt"])
    (summary,) = listing(api, tenant, name="renamed").get_json()["items"]
    assert summary["prompt_id"] == pid
    assert listing(api, tenant, name="qa").get_json()["items"] == []
    # A later version keeps the prompt's current name, not the one its base version was made under.
    put = api.call(
        "prompts_update", "PUT", f"{P}/{pid}", tenant=tenant, role="editor",
        json={"system_prompt": "Be exact."}, headers={"If-Match": '"v1"'},
    )  # fmt: skip
    assert put.status_code == 200
    assert (put.get_json()["name"], put.get_json()["version"]) == ("renamed", 2)


def test_patch_if_match_and_errors(api: Api, tenant: str) -> None:
    pid = create(api, tenant)
    assert patch(api, tenant, pid, {"name": "x"}, if_match=None).status_code == 428
    stale = patch(api, tenant, pid, {"name": "x"}, if_match='"v7"')
    assert (stale.status_code, stale.get_json()["code"]) == (412, "version_mismatch")
    assert patch(api, tenant, pid, {"name": "x"}, if_match="*").status_code == 200
    for bad in ({}, {"name": ""}, {"tags": ["Not A Tag"]}, {"tags": ["a", "a"]}, {"output_prompt": "{x}"}):
        r = patch(api, tenant, pid, bad)
        assert r.status_code == 400, bad
        assert r.content_type == "application/problem+json"
        assert r.get_json()["code"] == "validation_failed"
    assert patch(api, tenant, pid, {"name": "y"}, role="viewer").status_code == 403
    other = patch(api, "other-" + tenant, pid, {"name": "y"})
    assert (other.status_code, other.get_json()["code"]) == (404, "prompt_not_found")
    assert api.call("prompts_get", "GET", f"{P}/{pid}", tenant=tenant).get_json()["name"] == "x"


# --- archive and delete --------------------------------------------------------------------------


def test_archive_hides_from_listing_until_unarchived(api: Api, tenant: str) -> None:
    kept, gone = create(api, tenant, name="kept"), create(api, tenant, name="gone")
    assert archive(api, tenant, gone, role="editor").status_code == 403
    r = archive(api, tenant, gone)
    assert (r.status_code, r.get_json()["archived"]) == (200, True)
    assert [p["prompt_id"] for p in listing(api, tenant).get_json()["items"]] == [kept]
    shown = listing(api, tenant, include_archived="true").get_json()["items"]
    assert {p["prompt_id"]: p["archived"] for p in shown} == {kept: False, gone: True}
    got = api.call("prompts_get", "GET", f"{P}/{gone}", tenant=tenant, role="viewer")
    assert (got.status_code, got.get_json()["archived"]) == (200, True)  # still readable
    assert archive(api, tenant, gone).status_code == 200  # archiving again changes nothing
    assert archive(api, "other-" + tenant, kept).status_code == 404
    r = archive(api, tenant, gone, undo=True)
    assert (r.status_code, r.get_json()["archived"]) == (200, False)
    assert {p["prompt_id"] for p in listing(api, tenant).get_json()["items"]} == {kept, gone}


def test_label_blocks_archive_and_delete_until_removed(api: Api, tenant: str) -> None:
    pid = create(api, tenant)
    path = f"{P}/{pid}/labels/production"
    assert api.call("prompts_label_set", "PUT", path, tenant=tenant, json={"version": 1}).status_code == 200
    for r in (archive(api, tenant, pid), delete(api, tenant, pid)):
        assert r.status_code == 409
        problem = r.get_json()
        assert problem["code"] == "prompt_in_use"
        assert "label 'production'" in problem["detail"]
        assert problem["extra"]["used_by"] == [{"kind": "label", "name": "production", "version": 1}]
    assert api.call("prompts_get", "GET", f"{P}/{pid}", tenant=tenant).status_code == 200  # untouched
    assert api.call("prompts_label_delete", "DELETE", path, tenant=tenant).status_code == 200
    assert archive(api, tenant, pid).status_code == 200


def test_experiment_and_schedule_block_until_the_experiment_is_deleted(
    api: Api,
    experiments: Experiments,  # noqa: F811
) -> None:
    tenant, pid = experiments.tenant, experiments.prompt_id
    scheduled = experiments.created(schedule={"cron": "0 3 * * *"})["experiment_id"]
    for r in (archive(api, tenant, pid), delete(api, tenant, pid)):
        assert r.status_code == 409, r.get_data(as_text=True)
        used = r.get_json()["extra"]["used_by"]
        assert {(u["kind"], u["id"]) for u in used} == {("experiment", scheduled), ("schedule", scheduled)}
        assert scheduled in r.get_json()["detail"]
    assert experiments.delete(scheduled).status_code == 204
    assert delete(api, tenant, pid).status_code == 204


def test_archived_prompt_starts_no_experiment(api: Api, experiments: Experiments) -> None:  # noqa: F811
    assert archive(api, experiments.tenant, experiments.prompt_id).status_code == 200
    r = experiments.create(experiments.body())
    assert (r.status_code, r.get_json()["code"]) == (409, "prompt_archived")


def test_delete_removes_every_document(api: Api, tenant: str) -> None:
    pid = create(api, tenant)
    for n in range(1, 4):
        r = api.call(
            "prompts_update", "PUT", f"{P}/{pid}", tenant=tenant,
            json={"system_prompt": f"v{n + 1}"}, headers={"If-Match": f'"v{n}"'},
        )  # fmt: skip
        assert r.status_code == 200
    assert delete(api, tenant, pid, role="editor").status_code == 403
    assert delete(api, "other-" + tenant, pid).status_code == 404
    assert delete(api, tenant, pid).status_code == 204
    head = firestore_client().collection("tenants").document(tenant).collection("prompts").document(pid)
    assert not head.get().exists
    assert list(head.collection("versions").stream()) == []  # no orphan versions
    assert api.call("prompts_get", "GET", f"{P}/{pid}", tenant=tenant).status_code == 404
    assert delete(api, tenant, pid).status_code == 404


# --- sorting -------------------------------------------------------------------------------------


def _all_pages(api: Api, tenant: str, sort: str) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        query = {"sort": sort, "page_size": 2, **({"page_token": token} if token else {})}
        r = listing(api, tenant, **query)
        assert r.status_code == 200, r.get_data(as_text=True)
        names += [p["name"] for p in r.get_json()["items"]]
        token = r.get_json()["next_page_token"]
        if not token:
            return names


def test_sort_by_name_created_and_updated_across_pages(api: Api, tenant: str) -> None:
    made = ["delta", "alpha", "echo", "charlie", "bravo"]
    ids = {name: create(api, tenant, name=name) for name in made}
    assert _all_pages(api, tenant, "name") == sorted(made)
    assert _all_pages(api, tenant, "-name") == sorted(made, reverse=True)
    assert _all_pages(api, tenant, "created") == made
    assert _all_pages(api, tenant, "-created") == made[::-1]
    assert _all_pages(api, tenant, "-created") == [
        p["name"] for p in listing(api, tenant).get_json()["items"]
    ]
    assert patch(api, tenant, ids["alpha"], {"description": "touched"}).status_code == 200
    assert _all_pages(api, tenant, "-updated")[0] == "alpha"
    assert _all_pages(api, tenant, "updated")[-1] == "alpha"


def test_page_token_is_bound_to_its_sort(api: Api, tenant: str) -> None:
    for name in ("a", "b", "c"):
        create(api, tenant, name=name)
    token = listing(api, tenant, sort="name", page_size=1).get_json()["next_page_token"]
    assert listing(api, tenant, sort="name", page_size=1, page_token=token).status_code == 200
    for other in ({"sort": "-name"}, {"sort": "created"}, {"sort": "name", "include_archived": "true"}):
        r = listing(api, tenant, page_size=1, page_token=token, **other)
        assert (r.status_code, r.get_json()["code"]) == (400, "invalid_page_token"), other
    bad = listing(api, tenant, sort="size")
    assert (bad.status_code, bad.content_type) == (400, "application/problem+json")


def test_a_prompt_stored_without_the_archived_flag_is_listed_once_unarchived(api: Api, tenant: str) -> None:
    from google.cloud.firestore import DELETE_FIELD

    pid = create(api, tenant)
    head = firestore_client().collection("tenants").document(tenant).collection("prompts").document(pid)
    head.update({"archived": DELETE_FIELD})  # as a prompt created before the flag existed
    assert listing(api, tenant).get_json()["items"] == []
    assert [p["prompt_id"] for p in listing(api, tenant, include_archived="true").get_json()["items"]] == [
        pid
    ]
    assert archive(api, tenant, pid, undo=True).get_json()["archived"] is False
    assert [p["prompt_id"] for p in listing(api, tenant).get_json()["items"]] == [pid]


def test_a_patch_loses_to_a_change_made_after_it_read_the_prompt(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from promptopt.prompts import service

    pid = create(api, tenant)
    real = service._head

    def read_then_someone_writes(principal: Any, prompt_id: str) -> Any:
        snapshot = real(principal, prompt_id)
        snapshot.reference.update({"tags": ["theirs"], "updated_at": datetime.now(UTC)})
        return snapshot

    monkeypatch.setattr(service, "_head", read_then_someone_writes)
    r = patch(api, tenant, pid, {"tags": ["mine"]})
    assert (r.status_code, r.get_json()["code"]) == (412, "prompt_changed")
    monkeypatch.undo()
    assert api.call("prompts_get", "GET", f"{P}/{pid}", tenant=tenant).get_json()["tags"] == ["theirs"]
