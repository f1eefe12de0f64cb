"""The batch endpoints through their real apps: create (202), tasks in the emulator queue, run, read."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from promptopt.batch import chunks
from promptopt.batch import paths as batch_paths
from tests.integration.batch.conftest import Batch
from tests.support import claims_header

pytestmark = pytest.mark.integration

INLINE = {"system_prompt": "Answer with the final answer after ####.", "output_prompt": "Q: {question}"}


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"inputs": {"question": f"What is {i} + {i + 1}?"}, "reference": str(2 * i + 1)}
        for i in range(start, n)
    ]


def test_create_enqueues_one_named_task_per_chunk_and_running_them_completes_the_job(batch: Batch) -> None:
    response = batch.create({**INLINE, "rows": rows(23), "chunk_size": 10})
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()
    assert response.headers["Location"] == f"/api/v1/inference/batch/{job['job_id']}"
    assert (job["status"], job["kind"], job["model"], job["chunks"]) == ("running", "batch", "sim:default", 3)
    assert job["progress"] == {"total": 23, "succeeded": 0, "failed": 0, "pending": 23, "cache_hits": 0}

    tasks = batch.infra.tasks(job["job_id"])  # the real Tasks emulator holds them
    names = {t.name.rsplit("/", 1)[1] for t in tasks}
    assert names == {chunks.task_id(job["job_id"], c, 0) for c in range(3)}
    first = next(t for t in tasks if t.name.endswith(f"-{job['job_id']}-00000-0")).http_request
    expected = {"tenant": batch.tenant, "job_id": job["job_id"], "chunk": 0, "rows": [0, 10]}
    assert json.loads(first.body) == expected
    # Each task names its chunk's rows (the last chunk is short): see test_batch_read_ahead.
    assert sorted(json.loads(t.http_request.body)["rows"] for t in tasks) == [[0, 10], [10, 20], [20, 23]]
    assert first.url == "http://127.0.0.1:9/batch-chunk"
    assert first.oidc_token.service_account_email.startswith("tasks-invoker@")

    assert batch.run(job["job_id"]) == [200, 200, 200]
    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    assert done["progress"] == {"total": 23, "succeeded": 23, "failed": 0, "pending": 0, "cache_hits": 0}
    assert done["usage"]["calls"] == 23
    assert done["usage"]["input_tokens"] > 0
    assert done["usage"]["cost_usd"] == 0
    assert done["finished_at"] is not None

    results = batch.results(job["job_id"])
    assert [r["row"] for r in results] == list(range(23))
    assert results[4]["inputs"] == {"question": "What is 4 + 5?"}
    assert results[4]["reference"] == "9"
    assert results[4]["output"].endswith("#### 9")
    assert results[4]["status"] == "succeeded"
    assert not results[4]["cached"]
    assert batch.results(job["job_id"], status="failed") == []
    messages = batch.infra.pull("batch-completed", job["job_id"])
    assert [json.loads(__import__("base64").b64decode(m["message"]["data"])) for m in messages] == [
        {"tenant": batch.tenant, "job_id": job["job_id"], "status": "completed"}
    ]


def test_the_same_idempotency_key_makes_one_job_and_one_set_of_tasks(batch: Batch) -> None:
    body = {**INLINE, "rows": rows(5)}
    first = batch.create(body, headers={"Idempotency-Key": "batch-key-1"})
    again = batch.create(body, headers={"Idempotency-Key": "batch-key-1"})
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["job_id"] == first.get_json()["job_id"]
    assert len(batch.infra.tasks(first.get_json()["job_id"])) == 1


def test_a_stored_prompt_is_pinned_and_identical_calls_are_cached(batch: Batch) -> None:
    created = batch.api.call(
        "prompts_create",
        "POST",
        "/api/v1/prompts",
        tenant=batch.tenant,
        json={"output_prompt": "Compute {question}"},
    ).get_json()
    body = {"prompt_id": created["prompt_id"], "rows": rows(4) + rows(4), "chunk_size": 3}
    job = batch.started(body)
    assert job["prompt"] == {"prompt_id": created["prompt_id"], "version": 1}
    batch.api.call(
        "prompts_update", "PUT", f"/api/v1/prompts/{created['prompt_id']}", tenant=batch.tenant,
        json={"output_prompt": "Something else {question}"}, headers={"If-Match": '"v1"'},
    )  # fmt: skip
    batch.run(job["job_id"])
    done = batch.get(job["job_id"])
    assert done["progress"]["succeeded"] == 8
    # Rows 4-7 repeat rows 0-3: answered from the cache (or shared within the chunk), never called.
    assert done["usage"]["calls"] == 4
    assert done["progress"]["cache_hits"] == 4
    results = batch.results(job["job_id"])
    assert all(r["output"] == results[i % 4]["output"] for i, r in enumerate(results))

    body["version"] = 1  # the latest version is now 2; version 1 asks exactly what the first job asked
    second = batch.started(body)  # a new job over the same rows: all answers come from the cache
    batch.run(second["job_id"])
    again = batch.get(second["job_id"])
    assert (again["usage"]["calls"], again["progress"]["cache_hits"]) == (0, 8)
    no_cache = batch.started({**body, "cache": False})
    batch.run(no_cache["job_id"])
    assert batch.get(no_cache["job_id"])["usage"]["calls"] == 8


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**INLINE, "rows": [{"inputs": {"other": "x"}}]}, 400, "missing_variables"),
        ({**INLINE}, 400, "validation_failed"),
        ({**INLINE, "rows": rows(1), "dataset": {"dataset_id": "ds_x"}}, 400, "validation_failed"),
        ({**INLINE, "rows": rows(1), "model": "nope:x"}, 400, "unknown_model"),
        ({**INLINE, "rows": rows(1), "chunk_size": 501}, 400, "validation_failed"),
        ({"prompt_id": "pr_0123456789abcdef0123", "rows": rows(1)}, 404, "prompt_not_found"),
    ],
)
def test_bad_requests(batch: Batch, body: dict[str, Any], status: int, code: str) -> None:
    response = batch.create(body)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["code"] == code


def test_evaluation_requests_are_checked_before_anything_runs(batch: Batch) -> None:
    no_refs = {**INLINE, "rows": [{"inputs": {"question": "1 + 1"}}], "metrics": [{"name": "numeric"}]}
    response = batch.create(no_refs, path="/api/v1/inference/evaluate")
    assert (response.status_code, response.get_json()["code"]) == (400, "reference_required")
    bad_regex = {**INLINE, "rows": rows(1), "metrics": [{"name": "regex", "params": {"pattern": "("}}]}
    response = batch.create(bad_regex, path="/api/v1/inference/evaluate")
    assert (response.status_code, response.get_json()["code"]) == (
        400,
        "validation_failed",
    )  # refused by the request model
    json_only = {**INLINE, "rows": [{"inputs": {"question": "1 + 1"}}], "metrics": [{"name": "json_valid"}]}
    assert batch.create(json_only, path="/api/v1/inference/evaluate").status_code == 202


def test_viewers_cannot_start_jobs_and_other_tenants_cannot_see_them(batch: Batch) -> None:
    response = batch.api.call(
        "batch_create", "POST", "/api/v1/inference/batch", tenant=batch.tenant, role="viewer",
        json={**INLINE, "rows": rows(1)},
    )  # fmt: skip
    assert response.status_code == 403
    job = batch.started({**INLINE, "rows": rows(1)})
    for function, method, suffix in (
        ("batch_get", "GET", ""),
        ("batch_results", "GET", "/results"),
        ("batch_cancel", "POST", "/cancel"),
    ):
        path = f"/api/v1/inference/batch/{job['job_id']}{suffix}"
        other = batch.api.call(function, method, path, tenant="t-someone-else", role="admin")
        assert (other.status_code, other.get_json()["code"]) == (404, "job_not_found")
    missing = batch.api.call(
        "batch_get", "GET", "/api/v1/inference/batch/not-a-job", tenant=batch.tenant, role="viewer"
    )
    assert missing.status_code == 404


def test_a_tenant_runs_a_capped_number_of_jobs(batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_BATCH_MAX_ACTIVE_JOBS", "2")
    first = batch.started({**INLINE, "rows": rows(1)})
    batch.started({**INLINE, "rows": rows(2)})
    refused = batch.create({**INLINE, "rows": rows(3)})
    assert (refused.status_code, refused.get_json()["code"]) == (429, "too_many_jobs")
    assert int(refused.headers["Retry-After"]) > 0
    # The cap is counted with the new job written: a refused one backs out, its rows with it
    # (list_documents also names a job that is gone but left documents under it).
    assert len(list(batch_paths.jobs(batch.tenant).list_documents())) == 2
    batch.run(first["job_id"])  # one finishes: room for another
    assert batch.create({**INLINE, "rows": rows(3)}).status_code == 202


def test_concurrent_creates_never_exceed_the_cap(batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_BATCH_MAX_ACTIVE_JOBS", "3")
    app = batch.api.client("batch_create").application
    headers = claims_header(batch.tenant, "editor")

    def create(i: int) -> int:
        client = app.test_client()  # one client per thread; the app itself serves threads
        return client.post(
            "/api/v1/inference/batch", json={**INLINE, "rows": rows(i + 1)}, headers=headers
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(8)))
    assert set(statuses) <= {202, 429}
    assert 1 <= statuses.count(202) <= 3


def test_cancel_is_idempotent_and_finished_jobs_cannot_be_cancelled(batch: Batch) -> None:
    job = batch.started({**INLINE, "rows": rows(3)})
    cancelled = batch.cancel(job["job_id"])
    assert cancelled.status_code == 200
    assert (cancelled.get_json()["status"], cancelled.get_json()["stop_reason"]) == ("cancelled", "cancelled")
    assert batch.cancel(job["job_id"]).get_json()["status"] == "cancelled"
    finished = batch.started({**INLINE, "rows": rows(3)})
    batch.run(finished["job_id"])
    refused = batch.cancel(finished["job_id"])
    assert (refused.status_code, refused.get_json()["code"]) == (409, "job_not_cancellable")


def test_a_running_job_shows_the_finished_chunks_alike_in_its_get_and_the_listing(batch: Batch) -> None:
    job = batch.started({**INLINE, "rows": rows(23), "chunk_size": 10})
    first = [t for t in batch.infra.tasks(job["job_id"]) if t.name.endswith("-00000-0")]
    assert batch.run(job["job_id"], tasks=first) == [200]
    running = batch.get(job["job_id"])
    assert running["status"] == "running"
    assert running["progress"] == {"total": 23, "succeeded": 10, "failed": 0, "pending": 13, "cache_hits": 0}
    assert running["usage"]["calls"] == 10
    # Another running job, with other progress: the listing sums each job's chunks for that job.
    other = batch.started({**INLINE, "rows": rows(7), "chunk_size": 4})
    assert batch.run(other["job_id"], tasks=batch.infra.tasks(other["job_id"])[:1]) == [200]
    untouched = batch.started({**INLINE, "rows": rows(2)})
    listed = batch.api.call(
        "batch_list", "GET", "/api/v1/inference/batch", tenant=batch.tenant, role="viewer"
    ).get_json()["items"]
    shown = {j["job_id"]: (j["progress"], j["usage"]) for j in listed}
    for one in (job, other, untouched):
        got = batch.get(one["job_id"])
        assert shown[one["job_id"]] == (got["progress"], got["usage"])
    assert shown[other["job_id"]][0]["succeeded"] == 4
    assert shown[untouched["job_id"]][0]["succeeded"] == 0


def test_jobs_sort_by_created_either_way_with_the_sort_bound_into_the_token(batch: Batch) -> None:
    made = [batch.started({**INLINE, "rows": rows(1)})["job_id"] for _ in range(3)]

    def listed(**query: Any) -> Any:
        return batch.api.call(
            "batch_list", "GET", "/api/v1/inference/batch", tenant=batch.tenant, role="viewer",
            query_string=query,
        )  # fmt: skip

    for sort, want in (("created", made), ("-created", made[::-1])):
        first = listed(sort=sort, page_size=2).get_json()
        rest = listed(sort=sort, page_size=2, page_token=first["next_page_token"]).get_json()
        assert [j["job_id"] for j in first["items"] + rest["items"]] == want
        other = listed(sort="updated", page_size=2, page_token=first["next_page_token"])
        assert (other.status_code, other.get_json()["code"]) == (400, "invalid_page_token")
    assert listed(sort="name").status_code == 400  # jobs have no name
