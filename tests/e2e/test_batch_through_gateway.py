"""Batch and evaluation jobs as a user meets them: through the gateway, on the whole local stack.

Nothing is delivered by hand here: the Cloud Tasks emulator dispatches every chunk task over HTTP
to the batch_chunk function's own process, the last chunk publishes batch-completed on the
Pub/Sub emulator, and its push subscription delivers it to the batch_score function's process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from promptopt.local.stack import Stack
from tests.support import new_tenant

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("promptopt"))
FINAL = ("completed", "failed", "cancelled", "budget_exhausted")
# The simulator evaluates a plain expression exactly and, told about "####", ends with it.
SOLVER = "Q: {question}\nGive the final answer after '####'."
SUMS = [(3 * i + 1, 7 * i + 2) for i in range(40)]


@pytest.fixture
def tenant() -> str:
    return new_tenant()


@pytest.fixture
def api(stack: Stack, token_for: Callable[..., str], tenant: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token_for(tenant, 'editor')}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30, headers=headers) as client:
        yield client


def sums_jsonl() -> str:
    return "".join(
        json.dumps({"question": f"What is {a} + {b}?", "answer": str(a + b)}) + "\n" for a, b in SUMS
    )


def ready_dataset(api: httpx.Client, name: str = "sums") -> tuple[str, dict[str, int]]:
    """A dataset ingested from inline content, once ready: its id and rows per split."""
    body = {
        "name": name,
        "format": "jsonl",
        "mapping": {"inputs": ["question"], "reference": "answer"},
        "content": sums_jsonl(),
    }
    created = api.post("/api/v1/datasets", json=body)
    assert created.status_code == 201, created.text
    dataset_id = created.json()["dataset"]["dataset_id"]
    deadline = time.monotonic() + 30
    while True:
        version = api.get(f"/api/v1/datasets/{dataset_id}").json()["versions"][0]
        if version["status"] in ("ready", "failed"):
            break
        assert time.monotonic() < deadline, f"dataset never ready: {version}"
        time.sleep(0.2)
    assert version["status"] == "ready", version
    return dataset_id, version["stats"]["rows_per_split"]


def wait_job(api: httpx.Client, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll until the job is final (and an evaluation's metrics are in)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = api.get(f"/api/v1/inference/batch/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        pending_metrics = (job.get("evaluation") or {}).get("status") == "pending"
        if job["status"] in FINAL and not (pending_metrics and job["status"] == "budget_exhausted"):
            return job
        assert time.monotonic() < deadline, f"job not final after {timeout_s}s: {job}"
        time.sleep(0.2)


def all_results(api: httpx.Client, job_id: str, page_size: int = 7) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        params: dict[str, Any] = {"page_size": page_size}
        if token:
            params["page_token"] = token
        page = api.get(f"/api/v1/inference/batch/{job_id}/results", params=params)
        assert page.status_code == 200, page.text
        rows += page.json()["items"]
        token = page.json()["next_page_token"]
        if not token:
            return rows


def test_a_dataset_split_runs_through_the_tasks_emulator_and_repeats_from_the_cache(
    api: httpx.Client,
) -> None:
    dataset_id, per_split = ready_dataset(api)
    body = {
        "output_prompt": SOLVER,
        "dataset": {"dataset_id": dataset_id, "split": "train"},
        "model": "sim:default",
        "chunk_size": 4,  # several tasks, so several deliveries of the chunk function
    }
    created = api.post("/api/v1/inference/batch", json=body)
    assert created.status_code == 202, created.text
    assert created.headers["location"] == f"/api/v1/inference/batch/{created.json()['job_id']}"
    first = created.json()
    assert first["source"] == {
        "type": "dataset",
        "dataset_id": dataset_id,
        "dataset_version": 1,
        "split": "train",
    }
    total = per_split["train"]
    assert first["progress"]["total"] == total
    assert first["chunks"] == -(-total // 4)

    job = wait_job(api, first["job_id"])
    assert job["status"] == "completed", job
    assert job["progress"] == {"total": total, "succeeded": total, "failed": 0, "pending": 0, "cache_hits": 0}
    assert job["usage"]["calls"] == total
    assert job["usage"]["input_tokens"] > 0
    assert job["finished_at"] is not None
    rows = all_results(api, job["job_id"])
    assert [r["row"] for r in rows] == list(range(total))
    assert {r["status"] for r in rows} == {"succeeded"}
    assert {r["split"] for r in rows} == {"train"}
    for row in rows:
        a, b = (int(n) for n in row["inputs"]["question"].removeprefix("What is ").rstrip("?").split(" + "))
        assert row["output"].endswith(f"#### {a + b}")
        assert row["reference"] == str(a + b)
        assert row["cached"] is False
    failed_only = api.get(f"/api/v1/inference/batch/{job['job_id']}/results", params={"status": "failed"})
    assert failed_only.json()["items"] == []

    again = api.post("/api/v1/inference/batch", json=body)
    assert again.status_code == 202, again.text
    assert again.json()["job_id"] != job["job_id"]
    repeat = wait_job(api, again.json()["job_id"])
    assert repeat["status"] == "completed"
    assert repeat["progress"]["cache_hits"] == total
    assert repeat["usage"]["calls"] == 0
    assert all(r["cached"] for r in all_results(api, repeat["job_id"], page_size=100))


def test_an_evaluation_is_scored_by_the_pubsub_step_with_intervals(api: httpx.Client) -> None:
    dataset_id, per_split = ready_dataset(api)
    prompt = api.post("/api/v1/prompts", json={"name": "adder", "output_prompt": SOLVER})
    assert prompt.status_code == 201, prompt.text
    prompt_id = prompt.json()["prompt_id"]
    body = {
        "prompt_id": prompt_id,
        "dataset": {"dataset_id": dataset_id, "split": "test"},
        "metrics": [{"name": "numeric"}, {"name": "exact_match"}],
    }
    created = api.post("/api/v1/inference/evaluate", json=body)
    assert created.status_code == 202, created.text
    assert created.json()["kind"] == "evaluation"
    assert created.json()["evaluation"]["status"] == "pending"
    assert created.json()["prompt"] == {"prompt_id": prompt_id, "version": 1}

    job = wait_job(api, created.json()["job_id"])
    assert job["status"] == "completed", job
    evaluation = job["evaluation"]
    assert evaluation["status"] == "completed", evaluation
    total = per_split["test"]
    assert evaluation["n"] == total
    assert evaluation["failed_rows"] == 0
    assert evaluation["partial"] is False
    metrics = {m["name"]: m for m in evaluation["metrics"]}
    assert set(metrics) == {"numeric", "exact_match"}
    # The answers end with "#### <sum>": the number is right, the whole text is not the reference.
    assert metrics["numeric"]["mean"] == 1.0
    assert metrics["exact_match"]["mean"] == 0.0
    for metric in metrics.values():
        assert metric["n"] == total
        assert 0.0 <= metric["ci_low"] <= metric["mean"] <= metric["ci_high"] <= 1.0
        assert metric["ci_high"] - metric["ci_low"] > 0  # a real interval at n=total, not a point

    # A template variable the dataset does not have is refused before anything runs, as with inline rows.
    broken = {
        "output_prompt": "Q: {question} Hint: {hint}",
        "dataset": body["dataset"],
        "metrics": [{"name": "numeric"}],
    }
    created = api.post("/api/v1/inference/evaluate", json=broken)
    assert created.status_code == 400, created.text
    assert created.json()["code"] == "missing_variables"


def test_a_budget_stops_the_job_and_its_rows_so_far_are_still_scored(api: httpx.Client) -> None:
    rows = [{"inputs": {"question": f"What is {a} + {b}?"}, "reference": str(a + b)} for a, b in SUMS[:10]]
    body = {
        "output_prompt": SOLVER,
        "rows": rows,
        "chunk_size": 2,
        "budget": {"max_calls": 4},
        "metrics": [{"name": "numeric"}],
    }
    created = api.post("/api/v1/inference/evaluate", json=body)
    assert created.status_code == 202, created.text
    job = wait_job(api, created.json()["job_id"])
    assert job["status"] == "budget_exhausted", job
    assert job["stop_reason"] == "budget:max_calls"
    assert job["usage"]["calls"] <= 4
    ran = job["progress"]["succeeded"] + job["progress"]["failed"]
    assert ran < 10
    assert job["progress"]["pending"] == 10 - ran
    evaluation = job["evaluation"]
    assert evaluation["status"] == "completed", evaluation
    assert evaluation["partial"] is True
    assert evaluation["metrics"][0]["n"] == ran


def test_unknown_and_unready_sources_are_clear_4xx(api: httpx.Client) -> None:
    body: dict[str, Any] = {"output_prompt": SOLVER, "dataset": {"dataset_id": "ds_00000000000000000000"}}
    unknown = api.post("/api/v1/inference/batch", json=body)
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["code"] == "dataset_not_found"

    # A dataset whose file was never uploaded has no ready version.
    pending = api.post(
        "/api/v1/datasets",
        json={"name": "later", "format": "csv", "mapping": {"inputs": ["question"], "reference": "answer"}},
    )
    assert pending.status_code == 201, pending.text
    body["dataset"] = {"dataset_id": pending.json()["dataset"]["dataset_id"]}
    not_ready = api.post("/api/v1/inference/evaluate", json={**body, "metrics": [{"name": "numeric"}]})
    assert not_ready.status_code == 409, not_ready.text
    assert not_ready.json()["code"] == "dataset_not_ready"
    assert "no ready version" in not_ready.json()["detail"]
    body["dataset"]["version"] = 1
    assert api.post("/api/v1/inference/batch", json=body).json()["code"] == "version_not_ready"

    missing_vars = api.post(
        "/api/v1/inference/batch", json={"output_prompt": "Q: {question}", "rows": [{"inputs": {"q": "x"}}]}
    )
    assert missing_vars.status_code == 400, missing_vars.text
    assert api.get("/api/v1/inference/batch/bj_00000000000000000000").json()["code"] == "job_not_found"


# -- the CLI ------------------------------------------------------------------------------------------


def cli(stack: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTOPT_API_URL": stack.gateway_url, "PROMPTOPT_TOKEN": token}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cli_batch_walkthrough(
    stack: Stack, token_for: Callable[..., str], tenant: str, tmp_path: Path
) -> None:
    token = token_for(tenant, "editor")
    source = tmp_path / "sums.jsonl"
    source.write_text(sums_jsonl(), encoding="utf-8")
    created = cli(
        stack, token, "--json", "datasets", "create", str(source), "--name", "sums",
        "--input", "question", "--reference", "answer", "--wait",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    dataset_id = json.loads(created.stdout)["dataset"]["dataset_id"]
    n_test = json.loads(created.stdout)["version"]["stats"]["rows_per_split"]["test"]

    run = cli(
        stack, token, "batch", "run", "--output-prompt", SOLVER, "--dataset", dataset_id, "--split", "test",
        "--model", "sim:default", "--chunk-size", "3", "--wait",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "status:      completed" in run.stdout
    assert "not a language model" in run.stdout
    assert f"dataset {dataset_id} version 1, test split" in run.stdout
    assert "on the offline simulator" in run.stderr
    job_id = run.stderr.split("answers: promptopt batch results ")[1].split()[0]
    assert " completed: " in run.stderr  # the final progress line, logged off a terminal

    results = cli(stack, token, "batch", "results", job_id, "--page-size", "3")
    assert results.returncode == 0, results.stderr
    assert results.stdout.splitlines()[0].split() == [
        "ROW",
        "STATUS",
        "CACHED",
        "INPUT",
        "OUTPUT",
        "REFERENCE",
        "ERROR",
    ]
    assert "--page-token" in results.stderr
    got = json.loads(cli(stack, token, "--json", "batch", "get", job_id).stdout)
    assert got["status"] == "completed"
    finished = cli(stack, token, "batch", "cancel", job_id)
    assert finished.returncode == 2
    assert "job_not_cancellable" in finished.stderr

    evaluated = cli(
        stack, token, "batch", "evaluate", "--output-prompt", SOLVER, "--dataset", dataset_id,
        "--split", "test", "--metric", "numeric", "--metric", "regex", "--param", "regex.pattern=#### \\d+$",
        "--wait",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert "METRIC" in evaluated.stdout
    lines = {line.split()[0]: line.split() for line in evaluated.stdout.splitlines() if line[:1].isalpha()}
    assert lines["numeric"][1] == "1.000"
    assert lines["regex"][1] == "1.000"
    assert lines["numeric"][2].startswith("[")  # the 95% CI
    assert f"cache hits:  {n_test}\n" in evaluated.stdout  # the batch run made these very calls before

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"question": f"What is {a} + {b}?", "reference": str(a + b)}) + "\n"
            for a, b in SUMS[:8]
        )
    )
    budget = cli(
        stack, token, "--json", "batch", "evaluate", "--output-prompt", SOLVER, "--inputs", str(rows),
        "--metric", "numeric", "--chunk-size", "2", "--budget-calls", "2", "--no-cache", "--wait",
    )  # fmt: skip
    assert budget.returncode == 0, budget.stderr  # a budget stop is what was asked for
    job = json.loads(budget.stdout)
    assert job["status"] == "budget_exhausted"
    assert job["evaluation"]["partial"] is True
    assert "stopped at its budget (max_calls), as asked" in budget.stderr

    unknown = cli(
        stack, token, "batch", "run", "--output-prompt", SOLVER, "--dataset", "ds_00000000000000000000"
    )
    assert unknown.returncode == 2
    assert "dataset_not_found" in unknown.stderr


def test_cancel_stops_a_running_job_and_keeps_its_results(api: httpx.Client) -> None:
    # Many small chunks: the emulator dispatches them one by one, so the job is mid-flight when cancelled.
    rows = [{"inputs": {"question": f"What is {i} + {i + 1}?"}} for i in range(120)]
    created = api.post(
        "/api/v1/inference/batch", json={"output_prompt": SOLVER, "rows": rows, "chunk_size": 2}
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    cancelled = api.post(f"/api/v1/inference/batch/{job_id}/cancel")
    if cancelled.status_code == 409:  # documented: a job that already finished cannot be cancelled
        assert cancelled.json()["code"] == "job_not_cancellable"
        assert wait_job(api, job_id)["status"] == "completed"
        pytest.skip("the job finished before the cancel arrived")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["stop_reason"] == "cancelled"

    # The chunks left in the queue are still delivered, and make no calls: progress stops moving.
    previous, stable_since = None, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() - stable_since < 3:
        job = api.get(f"/api/v1/inference/batch/{job_id}").json()
        if job["progress"] != previous:
            previous, stable_since = job["progress"], time.monotonic()
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "cancelled"
    ran = job["progress"]["succeeded"] + job["progress"]["failed"]
    assert ran < 120, job
    assert job["progress"]["pending"] == 120 - ran
    assert job["usage"]["calls"] <= ran
    assert len(all_results(api, job_id, page_size=100)) == ran
    again = api.post(f"/api/v1/inference/batch/{job_id}/cancel")  # cancelling twice answers the job again
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
