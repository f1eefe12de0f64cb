"""`promptopt experiments ...` against the real experiment functions, runs driven end to end.

The run's evaluation jobs, their chunk tasks and the step and evaluation messages are delivered by
LocalCloud as the cloud would deliver them, so `start --wait` follows a real run of the engine on
the simulator (sim:default as the target, sim:optimizer proposing rewrites).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cli.conftest import Cli

pytestmark = pytest.mark.integration

SMALL = (
    "--iterations", "2", "--candidates", "4", "--minibatch", "4", "--validation-size", "20",
    "--test-size", "20", "--patience", "2",
)  # fmt: skip


@pytest.fixture
def world(cli: Cli) -> dict[str, str]:
    """A tenant with the bundled navigate task and a bare-question prompt."""
    dataset = cli.json("datasets", "create", "--bundled", "bbh/navigate", "--wait")["dataset"]["dataset_id"]
    prompt = cli.json("prompts", "create", "--name", "navigate", "--output-prompt", "{input}")["prompt_id"]
    return {"dataset": dataset, "prompt": prompt}


def settings(world: dict[str, str], *extra: str) -> list[str]:
    return [
        "--name", "navigate", "--prompt-id", world["prompt"], "--dataset", world["dataset"],
        "--target-model", "sim:default", "--optimizer-model", "sim:optimizer", "--metric", "exact_match",
        *SMALL, *extra,
    ]  # fmt: skip


def test_create_estimate_start_wait_metrics_and_diff(cli: Cli, world: dict[str, str]) -> None:
    code, out, err = cli("experiments", "estimate", *settings(world))
    assert code == 0, err
    assert "STEP" in out
    assert "FORMULA" in out
    assert "upper bounds for one run" in out
    estimate = cli.json("experiments", "estimate", *settings(world))
    assert estimate["task_calls"] > 0
    assert estimate["terms"]

    # The search's draws follow the run id (random), so the test gives it room: every candidate is a
    # reflective proposal and three iterations may pass without a gain.
    search = ("--strategy", "reflective", "--iterations", "3", "--patience", "3")
    code, out, err = cli("experiments", "create", *settings(world, *search), "--promote-label", "production")
    assert code == 0, err
    experiment_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("experiment_id:"))
    assert "simulated models (sim:default, sim:optimizer)" in out
    assert f"promptopt experiments start {experiment_id} --wait" in err
    posted = cli.posts()[-1]
    assert posted.path == "/api/v1/experiments"
    assert posted.headers["idempotency-key"]
    body = posted.json()
    assert body["optimizer"] == {
        "max_iterations": 3, "candidates_per_iteration": 4, "minibatch_size": 4, "validation_size": 20,
        "test_size": 20, "patience": 3, "strategy": "reflective",
    }  # fmt: skip
    assert body["metric"] == {"name": "exact_match", "params": {}}

    code, out, err = cli("experiments", "start", experiment_id, "--wait")
    assert code == 0, err + out
    assert "completed" in out
    assert "HELD-OUT TEST SPLIT" in out
    assert "paired lift" in out
    assert "lineage of the best version" in out
    assert "against the baseline (v1)" in out
    assert "+++" in out
    assert "scores measure the simulator's rules, not a language model" in out

    metrics = cli.json("experiments", "metrics", experiment_id)
    assert metrics["status"] == "completed"
    assert metrics["simulated"] is True
    assert metrics["paired_lift"]["ci_low"] > 0, metrics
    assert metrics["best_version"] > 1
    assert metrics["iterations"][0]["candidates"][0]["candidate_id"] == "c000_00"
    code, out, err = cli("experiments", "metrics", experiment_id)
    assert code == 0, err
    assert "RUNG SCORES" in out
    assert "VERDICT" in out

    diff = cli.json("experiments", "diff", experiment_id)
    assert diff["from_version"] == 1
    assert diff["to_version"] == metrics["best_version"]
    assert any(line.startswith("+") for line in diff["diff"])
    promoted = cli.json("prompts", "get", world["prompt"], "--label", "production")
    assert promoted["version"] == metrics["best_version"]

    runs = cli.json("experiments", "runs", experiment_id)
    assert [r["status"] for r in runs["items"]] == ["completed"]
    listed = cli.json("experiments", "list", "--status", "completed")
    assert experiment_id in [e["experiment_id"] for e in listed["items"]]
    code, out, err = cli("experiments", "get", experiment_id)
    assert code == 0, err
    assert "completed" in out
    run_id = runs["items"][0]["run_id"]
    code, out, err = cli("experiments", "get", experiment_id, "--run", run_id)
    assert code == 0, err
    assert "EVENT" in out
    assert "finished" in out


def test_start_wait_json_prints_the_final_run(cli: Cli, world: dict[str, str]) -> None:
    experiment_id = cli.json("experiments", "create", *settings(world, "--iterations", "1"))["experiment_id"]
    code, out, err = cli("--json", "experiments", "start", experiment_id, "--wait")
    assert code == 0, err
    run = json.loads(out)
    assert run["status"] == "completed"
    assert run["progress"] == 1.0
    assert run["usage"]["task_calls"] > 0
    assert run["usage"]["optimizer_calls"] > 0
    watched = cli.json("experiments", "watch", experiment_id)
    assert watched["run_id"] == run["run_id"]


def test_file_with_flags_on_top(cli: Cli, world: dict[str, str], tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "name": "from a file",
        "prompt": {"prompt_id": world["prompt"], "version": 1},
        "dataset": {"dataset_id": world["dataset"]},
        "metric": {"name": "regex", "params": {"pattern": "^(Yes|No)$"}},
        "optimizer": {"max_iterations": 3},
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    estimate = cli.json(
        "experiments", "estimate", "--file", str(path), "--iterations", "1", "--max-calls", "50"
    )
    assert estimate["within_budget"] is False
    body = cli.posts()[-1].json()
    assert body["name"] == "from a file"
    assert body["optimizer"] == {"max_iterations": 1}
    assert body["budget"] == {"max_calls": 50}
    assert body["metric"] == {"name": "regex", "params": {"pattern": "^(Yes|No)$"}}


def test_errors_are_exit_2_with_the_problem_code(cli: Cli, world: dict[str, str], tmp_path: Path) -> None:
    code, _, err = cli("experiments", "create", "--name", "x")
    assert code == 2
    assert "missing --prompt-id, --dataset, --metric" in err
    code, _, err = cli("experiments", "create", *settings(world)[: -len(SMALL)], "--prompt-id", "p_missing")
    assert code == 2
    assert "prompt_not_found" in err or "validation_failed" in err
    code, _, err = cli("experiments", "estimate", *settings(world), "--accept-split", "test")
    assert code == 2
    assert "validation_failed" in err
    code, out, err = cli("--json", "experiments", "get", "ex_0123456789abcdef0123")
    assert code == 2
    assert json.loads(out)["code"] == "experiment_not_found"
    bad = tmp_path / "bad.json"
    bad.write_text("[1]", encoding="utf-8")
    code, _, err = cli("experiments", "create", "--file", str(bad))
    assert code == 2
    assert "expected a JSON object" in err
    code, _, err = cli("experiments", "create", *settings(world), "--max-drop", "0.1")
    assert code == 2
    assert "--mode regression" in err


def test_cancel_a_running_run(cli: Cli, world: dict[str, str]) -> None:
    experiment_id = cli.json("experiments", "create", *settings(world))["experiment_id"]
    cli.cloud.hold_tasks = True  # the run waits on its baseline jobs
    run = cli.json("experiments", "start", experiment_id)
    assert run["status"] in ("queued", "running")
    code, _, err = cli("experiments", "start", experiment_id)
    assert code == 2
    assert "run_active" in err
    code, out, err = cli("experiments", "cancel", experiment_id, run["run_id"])
    assert code == 0, err
    assert "cancelled" in out
    again = cli.json("experiments", "cancel", experiment_id, run["run_id"])
    assert again["status"] == "cancelled"
    code, out, err = cli("experiments", "watch", experiment_id, run["run_id"])
    assert code == 0, err
    assert "was cancelled" in err
