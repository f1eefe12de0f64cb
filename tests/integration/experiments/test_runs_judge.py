"""Experiment runs scored by llm_judge, end to end on the emulators with the simulated models.

The judge grades each evaluated row in its chunk; its calls count in the run's usage and budget,
and the estimate bounds them.
"""

from __future__ import annotations

from typing import Any

import pytest

from promptopt.evaluation.judge import SYSTEM_PROMPT
from promptopt.experiments import engine, paths
from promptopt.experiments.rows import split_rows
from promptopt.llm.sim.optimizer import SimOptimizer
from promptopt.llm.sim.provider import SimProvider
from tests.integration.experiments import test_runs
from tests.integration.experiments.test_runs import Runs

pytestmark = pytest.mark.integration
run_infra, runs = test_runs.run_infra, test_runs.runs  # the run tests' fixtures

JUDGE = {"name": "llm_judge", "params": {"scale": "0-10"}}
SMALL = {"max_iterations": 1, "candidates_per_iteration": 2, "validation_size": 10, "test_size": 10}


def _scores(runs: Runs, job_id: str) -> dict[str, Any]:
    response = runs.world.api.call(
        "batch_scores", "GET", f"/api/v1/inference/batch/{job_id}/scores", tenant=runs.world.tenant,
        role="viewer",
    )  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    found: dict[str, Any] = response.get_json()
    return found


def test_a_run_scored_by_llm_judge_completes_within_its_estimate(runs: Runs) -> None:
    experiment = runs.experiment(metric=JUDGE, secondary_metrics=[{"name": "exact_match"}], optimizer=SMALL)
    assert experiment["metric"]["params"] == {"scale": "0-10", "model": "sim:default"}  # the judge, pinned
    estimate = experiment["estimate"]
    assert estimate["judge_calls"] == estimate["task_calls"] > 0
    (term,) = [t for t in estimate["terms"] if t["step"].startswith("judge")]
    assert term["step"] == "judge (llm_judge, sim:default)"
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    assert final["baseline"]["n"] == 10
    baseline = final["baseline"]
    assert 0.0 <= baseline["ci_low"] <= baseline["mean"] <= baseline["ci_high"] <= 1.0
    assert final["lift"] is not None  # baseline and best on the held-out split, paired
    metrics = runs.metrics(experiment["experiment_id"])
    assert metrics["baseline_test"]["n"] == 10
    assert metrics["best_test"] is not None
    usage = final["usage"]
    # The estimate is an upper bound of what the run spent, judge calls and tokens included.
    assert 0 < usage["judge_calls"] <= estimate["judge_calls"]
    assert usage["task_calls"] <= estimate["task_calls"]
    assert usage["optimizer_calls"] <= estimate["optimizer_calls"]
    assert usage["input_tokens"] <= estimate["input_tokens"]
    assert usage["output_tokens"] <= estimate["output_tokens"]
    # Per-row scores of the baseline's validation job: one judge grade per row.
    stored = paths.run_ref(runs.world.tenant, experiment["experiment_id"], run["run_id"]).get().to_dict()
    job_id = stored["state"]["cands"][engine.BASELINE]["accept_job"]
    judged = next(m for m in _scores(runs, job_id)["metrics"] if m["name"] == "llm_judge")
    assert judged["rows"] == list(range(10))
    assert all(value is not None and 0.0 <= value <= 1.0 for value in judged["values"])
    candidates = stored["state"]["cands"]
    assert candidates[engine.BASELINE]["secondary"].keys() == {"exact_match"}


def test_the_judge_grades_held_out_rows_but_the_optimizer_never_sees_them(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: dict[str, list[str]] = {"optimizer": [], "judge": []}
    optimizer, simulator = SimOptimizer.complete, SimProvider.complete

    def to_optimizer(self: SimOptimizer, request: Any) -> Any:
        shown["optimizer"].append(request.system_prompt + "\n" + request.user_prompt)
        return optimizer(self, request)

    def to_simulator(self: SimProvider, request: Any) -> Any:
        if request.system_prompt == SYSTEM_PROMPT:
            shown["judge"].append(request.user_prompt)
        return simulator(self, request)

    monkeypatch.setattr(SimOptimizer, "complete", to_optimizer)
    monkeypatch.setattr(SimProvider, "complete", to_simulator)
    experiment = runs.experiment(metric=JUDGE, optimizer=SMALL)
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    assert runs.run(experiment["experiment_id"], run["run_id"])["status"] == "completed"
    stored = paths.run_ref(runs.world.tenant, experiment["experiment_id"], run["run_id"]).get().to_dict()
    cfg = stored["config"]
    report = split_rows(runs.world.tenant, cfg["dataset_id"], cfg["dataset_version"], "test", 10)
    seen = {r.inputs["input"] for split in ("train", "validation") for r in _rows(runs, cfg, split)}
    held_out = [r.inputs["input"] for r in report if r.inputs["input"] not in seen]
    assert held_out
    assert shown["optimizer"]
    assert not any(row in text for text in shown["optimizer"] for row in held_out)
    assert any(row in text for text in shown["judge"] for row in held_out)  # the judge graded them


def _rows(runs: Runs, cfg: dict[str, Any], split: str) -> Any:
    return split_rows(runs.world.tenant, cfg["dataset_id"], cfg["dataset_version"], split, 1000)


def test_judge_calls_count_against_the_run_budget(runs: Runs) -> None:
    experiment = runs.experiment(metric=JUDGE, budget={"max_calls": 50}, optimizer=SMALL)
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "budget_exhausted", final
    usage = final["usage"]
    assert usage["judge_calls"] > 0
    assert usage["task_calls"] + usage["optimizer_calls"] + usage["judge_calls"] <= 50
    assert final["baseline"] is not None


def test_an_unknown_judge_model_is_refused_at_create(runs: Runs) -> None:
    body = runs.world.body(metric={"name": "llm_judge", "params": {"model": "nope:judge"}})
    response = runs.world.create(body)
    assert response.status_code == 400
    assert response.get_json()["code"] == "unknown_model"
    estimate = runs.world.estimate(body)
    assert estimate.status_code == 400


def test_a_run_scored_by_embedding_similarity_completes_within_its_estimate(runs: Runs) -> None:
    metric = {"name": "embedding_similarity", "params": {}}
    experiment = runs.experiment(metric=metric, secondary_metrics=[JUDGE], optimizer=SMALL)
    estimate = experiment["estimate"]
    assert estimate["judge_calls"] == 2 * estimate["task_calls"]  # one per model-graded metric and row
    steps = [t["step"] for t in estimate["terms"] if t["step"].startswith("judge")]
    assert steps == ["judge (embedding_similarity, sim:default)", "judge (llm_judge, sim:default)"]
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    assert final["baseline"]["n"] == 10
    usage = final["usage"]
    assert 0 < usage["judge_calls"] <= estimate["judge_calls"]
    assert usage["task_calls"] <= estimate["task_calls"]
    assert usage["input_tokens"] <= estimate["input_tokens"]
    assert usage["output_tokens"] <= estimate["output_tokens"]
