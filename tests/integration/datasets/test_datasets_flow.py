"""Datasets end to end on the emulators: create, ingest, read, version, drop, delete."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from promptopt import clients
from promptopt.config import settings
from tests.conftest import Api
from tests.integration.datasets.conftest import Ingest

CSV = "question,answer\n" + "".join(f"what is {i} plus {i}?,{2 * i}\n" for i in range(50))
MAPPING = {"inputs": ["question"], "reference": "answer"}


def create(api: Api, tenant: str, content: str = CSV, **fields: Any) -> dict[str, Any]:
    body = {"name": "sums", "format": "csv", "mapping": MAPPING, "content": content, **fields}
    response = api.call(
        "datasets_create", "POST", "/api/v1/datasets", tenant=tenant, role="editor", json=body
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def get(api: Api, tenant: str, dataset_id: str) -> dict[str, Any]:
    response = api.call("datasets_get", "GET", f"/api/v1/datasets/{dataset_id}", tenant=tenant, role="viewer")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def post_version(api: Api, tenant: str, dataset_id: str, content: str, key: str | None = None) -> Any:
    """POST /datasets/{id}/versions with inline content (and an Idempotency-Key when given)."""
    return api.call(
        "datasets_version_create",
        "POST",
        f"/api/v1/datasets/{dataset_id}/versions",
        tenant=tenant,
        role="editor",
        json={"content": content},
        headers={"Idempotency-Key": key} if key else {},
    )


def version_of(api: Api, tenant: str, dataset_id: str, number: int) -> dict[str, Any]:
    versions = {v["version"]: v for v in get(api, tenant, dataset_id)["versions"]}
    return versions[number]


def source_name(created: dict[str, Any]) -> str:
    return created["version"]["source"].split("/", 3)[3]


def all_rows(api: Api, tenant: str, dataset_id: str, **params: Any) -> list[dict[str, Any]]:
    rows, token = [], None
    while True:
        query = {**params, "page_size": 7, **({"page_token": token} if token else {})}
        response = api.call(
            "datasets_rows",
            "GET",
            f"/api/v1/datasets/{dataset_id}/rows",
            tenant=tenant,
            role="viewer",
            query_string=query,
        )
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        rows += page["items"]
        token = page["next_page_token"]
        if not token:
            return rows


def test_inline_upload_is_ingested_into_a_ready_split_version(api: Api, tenant: str, ingest: Ingest) -> None:
    created = create(api, tenant)
    assert created["upload"] is None
    assert created["version"]["status"] == "pending"
    dataset_id = created["dataset"]["dataset_id"]
    assert ingest.deliver(source_name(created)) == 200

    version = version_of(api, tenant, dataset_id, 1)
    assert version["status"] == "ready", version
    assert version["rows_ok"] == 50
    assert version["rows_bad"] == 0
    per_split = version["stats"]["rows_per_split"]
    assert sum(per_split.values()) == 50
    assert per_split.get("train", 0) > per_split.get("test", 0)
    assert get(api, tenant, dataset_id)["latest_version"] == 1

    rows = all_rows(api, tenant, dataset_id)
    assert sorted(r["row"] for r in rows) == list(range(50))
    first = next(r for r in rows if r["row"] == 0)
    assert first == {
        "row": 0,
        "line": 2,
        "split": first["split"],
        "inputs": {"question": "what is 0 plus 0?"},
        "reference": "0",
    }
    test_rows = all_rows(api, tenant, dataset_id, split="test")
    assert {r["split"] for r in test_rows} == {"test"}
    assert len(test_rows) == per_split["test"]


def test_sample_is_reproducible_by_seed(api: Api, tenant: str, ingest: Ingest) -> None:
    created = create(api, tenant)
    dataset_id = created["dataset"]["dataset_id"]
    ingest.deliver(source_name(created))

    def sample(seed: int, split: str | None = None) -> list[int]:
        query: dict[str, Any] = {"n": 5, "seed": seed, **({"split": split} if split else {})}
        response = api.call(
            "datasets_sample",
            "GET",
            f"/api/v1/datasets/{dataset_id}/sample",
            tenant=tenant,
            role="viewer",
            query_string=query,
        )
        assert response.status_code == 200, response.get_json()
        return [row["row"] for row in response.get_json()["rows"]]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert len(set(sample(3, "train"))) == 5


def test_redelivered_event_changes_nothing(api: Api, tenant: str, ingest: Ingest) -> None:
    created = create(api, tenant)
    dataset_id = created["dataset"]["dataset_id"]
    event = ingest.event_for(source_name(created))
    assert ingest.deliver(event) == 200
    ready = version_of(api, tenant, dataset_id, 1)
    assert ingest.deliver(event) == 200
    assert ingest.deliver(event) == 200
    again = get(api, tenant, dataset_id)
    assert again["version_count"] == 1
    assert len(again["versions"]) == 1
    assert again["versions"][0]["updated_at"] == ready["updated_at"]  # not processed a second time
    assert len(all_rows(api, tenant, dataset_id)) == 50


def test_new_version_keeps_old_readable_and_out_of_order_events_keep_the_newest(
    api: Api, tenant: str, ingest: Ingest
) -> None:
    created = create(api, tenant)
    dataset_id = created["dataset"]["dataset_id"]
    response = post_version(api, tenant, dataset_id, "question,answer\nq1,a1\nq2,a2\n")
    assert response.status_code == 201, response.get_json()
    second = response.get_json()
    assert second["version"]["version"] == 2
    # The newer version's event arrives first; the older one's afterwards.
    ingest.deliver(source_name(second))
    assert get(api, tenant, dataset_id)["latest_version"] == 2
    ingest.deliver(source_name(created))
    assert get(api, tenant, dataset_id)["latest_version"] == 2
    assert len(all_rows(api, tenant, dataset_id)) == 2
    assert len(all_rows(api, tenant, dataset_id, version=1)) == 50


def test_version_create_with_the_same_key_makes_one_version(api: Api, tenant: str, ingest: Ingest) -> None:
    dataset_id = create(api, tenant)["dataset"]["dataset_id"]
    statuses = []
    for _ in range(2):
        response = post_version(api, tenant, dataset_id, "question,answer\nq,a\n", key="k-1")
        statuses.append((response.status_code, response.get_json()["version"]["version"]))
    assert statuses == [(201, 2), (201, 2)]
    assert get(api, tenant, dataset_id)["version_count"] == 2


def test_bucket_drop_creates_the_dataset_and_each_new_file_a_version(
    api: Api, tenant: str, ingest: Ingest
) -> None:
    name = f"tenants/{tenant}/drop/faq.jsonl"
    ingest.put(name, b'{"input": "hi", "target": "hello"}\n{"input": "bye", "target": "ciao"}\n')
    first_event = ingest.event_for(name)
    assert ingest.deliver(first_event) == 200
    assert ingest.deliver(first_event) == 200  # at-least-once: the same file twice
    listing = api.call("datasets_list", "GET", "/api/v1/datasets", tenant=tenant, role="viewer").get_json()
    assert [d["name"] for d in listing["items"]] == ["faq"]
    dataset = listing["items"][0]
    assert dataset["mapping"] == {"inputs": ["input"], "reference": "target"}
    assert dataset["version_count"] == 1
    detail = get(api, tenant, dataset["dataset_id"])
    assert detail["versions"][0]["status"] == "ready"
    assert detail["versions"][0]["origin"] == "bucket_drop"

    ingest.put(name, b'{"input": "a", "target": "b"}\n')  # the pipeline drops a newer file
    ingest.deliver(name)
    detail = get(api, tenant, dataset["dataset_id"])
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["latest_version"] == 2
    assert ingest.deliver(first_event) == 200  # an old duplicate arriving late creates nothing
    assert get(api, tenant, dataset["dataset_id"])["version_count"] == 2


def test_drop_mapping_can_come_from_object_metadata(api: Api, tenant: str, ingest: Ingest) -> None:
    name = f"tenants/{tenant}/drop/math.csv"
    ingest.put(name, b"q,sol,ans\n1+1,two,2\n", metadata={"inputs": "q,sol", "reference": "ans"})
    ingest.deliver(name)
    item = api.call("datasets_list", "GET", "/api/v1/datasets", tenant=tenant, role="viewer").get_json()[
        "items"
    ][0]
    assert item["mapping"] == {"inputs": ["q", "sol"], "reference": "ans"}
    assert get(api, tenant, item["dataset_id"])["versions"][0]["status"] == "ready"


def test_events_outside_tenant_prefixes_are_acknowledged_and_ignored(
    api: Api, tenant: str, ingest: Ingest
) -> None:
    for name in [
        "stray.csv",
        f"tenants/{tenant}/elsewhere/x.csv",
        f"tenants/{tenant}/drop/nested/x.csv",
        f"tenants/{tenant}/drop/notes.txt",
    ]:
        ingest.put(name, b"input,target\na,b\n")
        assert ingest.deliver(name) == 200
    listing = api.call("datasets_list", "GET", "/api/v1/datasets", tenant=tenant, role="viewer").get_json()
    assert listing["items"] == []
    other_bucket = {
        "bucket": "someone-elses-bucket",
        "name": f"tenants/{tenant}/drop/x.csv",
        "generation": "1",
    }
    assert ingest.deliver(other_bucket) == 200


def test_other_tenants_cannot_see_or_delete(api: Api, tenant: str, ingest: Ingest) -> None:
    dataset_id = create(api, tenant)["dataset"]["dataset_id"]
    for function, method, path in [
        ("datasets_get", "GET", f"/api/v1/datasets/{dataset_id}"),
        ("datasets_rows", "GET", f"/api/v1/datasets/{dataset_id}/rows"),
        ("datasets_sample", "GET", f"/api/v1/datasets/{dataset_id}/sample"),
        ("datasets_delete", "DELETE", f"/api/v1/datasets/{dataset_id}"),
    ]:
        response = api.call(function, method, path, tenant="t-intruder", role="admin")
        assert response.status_code == 404, (function, response.get_json())


def test_reading_rows_before_ingestion_is_a_409(api: Api, tenant: str) -> None:
    dataset_id = create(api, tenant)["dataset"]["dataset_id"]
    response = api.call(
        "datasets_rows", "GET", f"/api/v1/datasets/{dataset_id}/rows", tenant=tenant, role="viewer"
    )
    assert response.status_code == 409
    assert response.get_json()["code"] == "dataset_not_ready"


def test_delete_removes_records_and_files_and_late_events_are_ignored(
    api: Api, tenant: str, ingest: Ingest
) -> None:
    created = create(api, tenant)
    dataset_id = created["dataset"]["dataset_id"]
    event = ingest.event_for(source_name(created))
    ingest.deliver(event)
    editor = api.call(
        "datasets_delete", "DELETE", f"/api/v1/datasets/{dataset_id}", tenant=tenant, role="editor"
    )
    assert editor.status_code == 403
    response = api.call(
        "datasets_delete", "DELETE", f"/api/v1/datasets/{dataset_id}", tenant=tenant, role="admin"
    )
    assert response.status_code == 204
    bucket = clients.storage_client().bucket(settings().datasets_bucket)
    assert list(bucket.list_blobs(prefix=f"tenants/{tenant}/datasets/{dataset_id}/")) == []
    assert api.call("datasets_get", "GET", f"/api/v1/datasets/{dataset_id}", tenant=tenant).status_code == 404
    assert ingest.deliver(event) == 200  # a late redelivery does not resurrect it
    assert api.call("datasets_get", "GET", f"/api/v1/datasets/{dataset_id}", tenant=tenant).status_code == 404
    again = api.call(
        "datasets_delete", "DELETE", f"/api/v1/datasets/{dataset_id}", tenant=tenant, role="admin"
    )
    assert again.status_code == 404


def test_base64_inline_content_and_its_errors(api: Api, tenant: str) -> None:
    body = {"name": "b", "format": "csv", "mapping": MAPPING}
    ok = api.call(
        "datasets_create",
        "POST",
        "/api/v1/datasets",
        tenant=tenant,
        role="editor",
        json={**body, "content_base64": base64.b64encode(CSV.encode()).decode()},
    )
    assert ok.status_code == 201
    bad = api.call(
        "datasets_create",
        "POST",
        "/api/v1/datasets",
        tenant=tenant,
        role="editor",
        json={**body, "content_base64": "***"},
    )
    assert bad.status_code == 400
    assert "base64" in bad.get_data(as_text=True)
    both = api.call(
        "datasets_create",
        "POST",
        "/api/v1/datasets",
        tenant=tenant,
        role="editor",
        json={**body, "content": "x", "content_base64": "eA=="},
    )
    assert both.status_code == 400
    viewer = api.call(
        "datasets_create",
        "POST",
        "/api/v1/datasets",
        tenant=tenant,
        role="viewer",
        json={**body, "content": CSV},
    )
    assert viewer.status_code == 403


@pytest.mark.parametrize("page_token", ["garbage", "eyJjIjpbMSwtNV0sInMiOiJ4In0"])
def test_hand_made_row_page_tokens_are_400(api: Api, tenant: str, ingest: Ingest, page_token: str) -> None:
    created = create(api, tenant)
    ingest.deliver(source_name(created))
    response = api.call(
        "datasets_rows",
        "GET",
        f"/api/v1/datasets/{created['dataset']['dataset_id']}/rows",
        tenant=tenant,
        role="viewer",
        query_string={"page_token": page_token},
    )
    assert response.status_code == 400


def test_a_create_answers_what_it_wrote_as_a_get_then_reads_it(
    api: Api, tenant: str, datasets_bucket: str
) -> None:
    # The creates answer the documents their own commit wrote without reading them back: the
    # answer must be what Firestore then holds, field for field and timestamp for timestamp.
    created = create(api, tenant)
    dataset_id = created["dataset"]["dataset_id"]
    assert created["dataset"] == get(api, tenant, dataset_id)
    assert created["version"] == version_of(api, tenant, dataset_id, 1)

    def new_version() -> dict[str, Any]:
        response = post_version(api, tenant, dataset_id, "question,answer\nq1,a1\n", key="answer-as-written")
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    second = new_version()
    assert second["version"]["version"] == 2
    assert second["dataset"] == get(api, tenant, dataset_id)
    assert second["version"] == version_of(api, tenant, dataset_id, 2)
    # A replay of the same request reads what the first made, and answers the same.
    assert new_version() == second
