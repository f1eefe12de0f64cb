"""`promptopt batch ...` against the real batch functions: chunks run as Cloud Tasks would run them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promptopt.batch import paths
from tests.integration.cli.conftest import Cli

pytestmark = pytest.mark.integration

RUN = ("batch", "run", "--output-prompt", "Q: {q}")


def rows_file(path: Path, count: int = 50) -> Path:
    lines = [{"q": f"what is {i} + {i}?", "reference": str(2 * i)} for i in range(count)]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def rows(tmp_path: Path) -> str:
    return str(rows_file(tmp_path / "rows.jsonl"))


@pytest.fixture
def dataset(cli: Cli, rows: str) -> str:
    created = cli.json(
        "datasets", "create", rows, "--name", "sums", "--input", "q", "--reference", "reference", "--wait"
    )
    return str(created["dataset"]["dataset_id"])


def only_job(cli: Cli) -> str:
    (job_id,) = cli.cloud.jobs
    return job_id


def test_run_over_a_dataset_split_sends_the_body_and_a_key(cli: Cli, dataset: str) -> None:
    code, out, err = cli(
        "batch", "run", "--output-prompt", "Q: {q}", "--system-prompt", "Be brief.",
        "--dataset", dataset, "--dataset-version", "1", "--split", "test", "--model", "sim:default",
        "--temperature", "0.5", "--max-tokens", "64", "--budget-calls", "100", "--budget-tokens", "5000",
        "--budget-usd", "0.5", "--chunk-size", "5", "--concurrency", "4", "--no-cache",
    )  # fmt: skip
    assert code == 0, err
    post = cli.posts()[-1]
    assert post.path == "/api/v1/inference/batch"
    assert post.headers["idempotency-key"]
    assert post.json() == {
        "output_prompt": "Q: {q}",
        "system_prompt": "Be brief.",
        "dataset": {"dataset_id": dataset, "version": 1, "split": "test"},
        "model": "sim:default",
        "temperature": 0.5,
        "max_tokens": 64,
        "chunk_size": 5,
        "concurrency": 4,
        "cache": False,
        "budget": {"max_calls": 100, "max_tokens": 5000, "max_cost_usd": 0.5},
    }
    assert "bj_" in out
    assert f"dataset {dataset} version 1, test split" in out
    assert "simulator" in out
    assert "promptopt batch get bj_" in err
    assert "--wait" in err


def test_a_stored_prompt_by_label_or_version(cli: Cli, rows: str) -> None:
    pid = cli.json("prompts", "create", "--output-prompt", "Q: {q}")["prompt_id"]
    cli("prompts", "label", pid, "production", "--version", "1")
    assert cli("batch", "run", "--prompt-id", pid, "--label", "production", "--inputs", rows)[0] == 0
    code, out, err = cli("batch", "run", "--prompt-id", pid, "--version", "1", "--inputs", rows)
    assert code == 0, err
    first, second = (p.json() for p in cli.posts()[-2:])
    assert (first["prompt_id"], first["label"]) == (pid, "production")
    assert (second["prompt_id"], second["version"]) == (pid, 1)
    assert f"{pid} version 1" in out


def test_inputs_file_rows_flat_or_nested(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    lines: list[Any] = [
        {"q": "1+1?", "reference": "2"},
        {"inputs": {"q": "2+2?"}, "reference": 4},
        {"q": "n?", "n": 3, "flag": True, "nothing": None},
    ]
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    code, out, err = cli(*RUN, "--inputs", str(source))
    assert code == 0, err
    assert cli.posts()[0].json()["rows"] == [
        {"inputs": {"q": "1+1?"}, "reference": "2"},
        {"inputs": {"q": "2+2?"}, "reference": "4"},
        {"inputs": {"q": "n?", "n": "3", "flag": "true", "nothing": ""}},
    ]
    assert "inline rows" in out


def test_api_refusals_exit_2_with_the_problem(cli: Cli) -> None:
    code, _, err = cli(*RUN, "--dataset", "ds_missing")
    assert code == 2
    assert "HTTP 404" in err


def test_a_retried_create_reuses_its_idempotency_key(cli: Cli, rows: str) -> None:
    cli.cloud.fail_next("api", 503, 503)
    code, _, err = cli(*RUN, "--inputs", rows)
    assert code == 0, err
    posts = cli.posts()
    assert len(posts) == 3
    assert len({p.headers["idempotency-key"] for p in posts}) == 1
    assert len(cli.cloud.jobs) == 1
    assert cli(*RUN, "--inputs", rows, "--idempotency-key", "k-1")[0] == 0
    assert cli.posts()[-1].headers["idempotency-key"] == "k-1"


def test_run_wait_shows_progress_then_a_summary(cli: Cli, rows: str) -> None:
    code, out, err = cli(*RUN, "--inputs", rows, "--chunk-size", "20", "--wait")
    assert code == 0, err
    job_id = only_job(cli)
    progress = [line for line in err.splitlines() if line.startswith("bj_")]
    assert progress[0].startswith(f"{job_id} running: ")
    assert progress[-1].startswith(f"{job_id} completed: 50/50 rows")
    assert f"started {job_id} on the offline simulator: 50 rows" in err
    assert f"answers: promptopt batch results {job_id}" in err
    assert "status:      completed" in out
    assert "50 of 50 done:" in out
    assert "took " in out
    assert "not a language model" in out


def test_evaluate_wait_prints_the_metrics_with_their_intervals(cli: Cli, rows: str) -> None:
    code, out, err = cli(
        "batch", "evaluate", "--output-prompt", "Q: {q}", "--inputs", rows, "--chunk-size", "25",
        "--metric", "numeric", "--metric", "exact_match", "--param", "numeric.tolerance=0.5", "--wait",
    )  # fmt: skip
    assert code == 0, err
    (post,) = cli.posts()
    assert post.path == "/api/v1/inference/evaluate"
    assert post.json()["metrics"] == [
        {"name": "numeric", "params": {"tolerance": 0.5}},
        {"name": "exact_match", "params": {}},
    ]
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("METRIC"))
    assert header.split() == ["METRIC", "MEAN", "95%", "CI", "N"]
    numeric = next(line for line in lines if line.startswith("numeric "))
    assert numeric.split()[-1] == "50"
    assert "completed over 50 rows" in out


def test_a_judge_metric_the_api_refuses_exits_2_with_its_reason(cli: Cli, rows: str) -> None:
    code, _, err = cli(
        "batch",
        "evaluate",
        "--output-prompt",
        "Q: {q}",
        "--inputs",
        rows,
        "--metric",
        "llm_judge",
        "--param",
        "llm_judge.model=nope:judge",
    )
    assert code == 2
    assert "unknown_model" in err
    assert "llm_judge" in err


def test_a_failed_job_exits_1(cli: Cli, rows: str) -> None:
    cli.cloud.hold_tasks = True
    assert cli(*RUN, "--inputs", rows)[0] == 0
    job_id = only_job(cli)
    # Jobs fail only when a step breaks (enqueueing, scoring); the test puts the job in that state.
    paths.job_ref(cli.tenant, job_id).update(
        {"status": "failed", "error": {"code": "evaluation_failed", "message": "the metric broke"}}
    )
    code, out, err = cli("batch", "get", job_id, "--wait")
    assert code == 1
    assert "status:      failed" in out
    assert "failed: the metric broke (evaluation_failed)" in err


def test_a_budget_stop_exits_0_and_says_so_after_the_metrics_arrive(cli: Cli, rows: str) -> None:
    code, out, err = cli(
        "batch", "evaluate", "--output-prompt", "Q: {q}", "--inputs", rows, "--metric", "numeric",
        "--chunk-size", "10", "--concurrency", "1", "--budget-calls", "20", "--wait",
    )  # fmt: skip
    assert code == 0, err
    assert "stopped at its budget (max_calls), as asked:" in err
    assert any(line.startswith("numeric ") for line in out.splitlines())  # waited for the evaluation step
    assert "partial: only the rows that ran were scored" in out
    assert "budget:max_calls" in out


def test_a_cancelled_job_exits_0_and_says_so(cli: Cli, rows: str) -> None:
    cli.cloud.hold_tasks = True
    code, _, err = cli(
        "batch", "evaluate", "--output-prompt", "Q: {q}", "--inputs", rows, "--metric", "numeric"
    )
    assert code == 0, err
    job_id = only_job(cli)
    code, out, _ = cli("batch", "cancel", job_id)
    assert code == 0
    assert out.strip() == (
        f"{job_id} cancelled: 0 of 50 rows have a result (kept); chunks not yet run make no model calls"
    )
    code, out, err = cli("batch", "get", job_id, "--wait")
    assert code == 0
    assert "was cancelled: 0 of 50 rows ran" in err
    assert "status:      cancelled" in out
    assert "evaluation:  not run (the job was cancelled)" in out
    assert cli("batch", "cancel", job_id)[0] == 0  # cancelling twice is fine


def test_cancelling_a_finished_job_is_a_409(cli: Cli, rows: str) -> None:
    assert cli(*RUN, "--inputs", rows, "--wait")[0] == 0
    code, _, err = cli("batch", "cancel", only_job(cli))
    assert code == 2
    assert "HTTP 409" in err


def test_wait_json_prints_one_document_of_the_final_job(cli: Cli, rows: str) -> None:
    code, out, err = cli(
        "--json",
        "batch",
        "evaluate",
        "--output-prompt",
        "Q: {q}",
        "--inputs",
        rows,
        "--metric",
        "numeric",
        "--wait",
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "completed"
    assert job["evaluation"]["metrics"][0]["name"] == "numeric"


def test_without_wait_json_is_the_created_job(cli: Cli, rows: str) -> None:
    code, out, _ = cli("--json", *RUN, "--inputs", rows)
    assert code == 0
    assert json.loads(out)["status"] in ("queued", "running")


def test_the_wait_times_out_with_exit_1_and_the_job_keeps_running(cli: Cli, rows: str) -> None:
    cli.cloud.hold_tasks = True
    code, _, err = cli(*RUN, "--inputs", rows, "--wait", "--wait-timeout", "0.001")
    assert code == 1
    assert "keeps running" in err
    assert f"promptopt batch get {only_job(cli)} --wait" in err


def test_get_shows_the_job_and_unknown_ids_are_404(cli: Cli, rows: str) -> None:
    cli(*RUN, "--inputs", rows)
    code, out, _ = cli("batch", "get", only_job(cli))
    assert code == 0
    assert "inline rows" in out
    code, _, err = cli("batch", "get", "bj_nope")
    assert code == 2
    assert "HTTP 404" in err


def test_results_pages_filters_and_collects(cli: Cli, rows: str) -> None:
    cli(*RUN, "--inputs", rows, "--wait")
    job_id = only_job(cli)
    code, out, err = cli("batch", "results", job_id, "--page-size", "5")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ROW", "STATUS", "CACHED", "INPUT", "OUTPUT", "REFERENCE", "ERROR"]
    assert len(lines) == 6
    assert "what is 0 + 0?" in lines[1]
    assert f"more: promptopt batch results {job_id} --page-size 5 --page-token " in err
    code, out, _ = cli("--json", "batch", "results", job_id, "--all", "--page-size", "7")
    page = json.loads(out)
    assert [r["row"] for r in page["items"]] == list(range(50))
    assert page["next_page_token"] is None
    code, out, _ = cli("--json", "batch", "results", job_id, "--status", "failed")
    assert json.loads(out)["items"] == []
    assert cli.cloud.sent()[-1].query == {"status": "failed"}
