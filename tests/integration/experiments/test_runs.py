"""Experiment runs end to end on the emulators, with the simulated target and optimizer models.

Every step is a real function: the run's evaluation jobs fan out as Cloud Tasks (delivered here
to the chunk function), batch-completed and evaluation-completed travel through Pub/Sub, and
experiment-step advances the run.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from promptopt import config
from promptopt.experiments import engine, paths, tick
from promptopt.llm import registry
from promptopt.llm.sim.optimizer import SimOptimizer
from tests.integration.experiments.conftest import ROOT, Experiments
from tests.integration.experiments.runs_support import Pump, RunInfra, configure, make_infra

pytestmark = pytest.mark.integration

SETTINGS = {
    "max_iterations": 2,
    "candidates_per_iteration": 4,
    "minibatch_size": 6,
    "validation_size": 30,
    "test_size": 40,
    "patience": 2,
    "seed": 0,
}


@pytest.fixture(scope="session")
def run_infra(emulator_env: dict[str, str]) -> RunInfra:
    return make_infra()


@pytest.fixture
def runs(experiments: Experiments, run_infra: RunInfra, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runs]:
    configure(run_infra, monkeypatch)
    config.reset()
    registry.reset()
    yield Runs(experiments, Pump(api=experiments.api, infra=run_infra))
    config.reset()
    registry.reset()


class Runs:
    """An experiment's runs, started and driven to the end."""

    def __init__(self, world: Experiments, pump: Pump) -> None:
        self.world = world
        self.pump = pump

    def experiment(self, **overrides: Any) -> dict[str, Any]:
        body = self.world.body(
            target_model="sim:default",
            optimizer_model="sim:optimizer",
            optimizer={**SETTINGS, **overrides.pop("optimizer", {})},
            **overrides,
        )
        response = self.world.create(body)
        assert response.status_code == 201, response.get_data(as_text=True)
        created: dict[str, Any] = response.get_json()
        return created

    def start(self, experiment_id: str, *, role: str = "editor", **kw: Any) -> Any:
        return self.world.api.call(
            "experiments_start", "POST", f"{ROOT}/{experiment_id}/start", tenant=self.world.tenant,
            role=role, **kw,
        )  # fmt: skip

    def started(self, experiment_id: str, **kw: Any) -> dict[str, Any]:
        response = self.start(experiment_id, **kw)
        assert response.status_code == 202, response.get_data(as_text=True)
        run: dict[str, Any] = response.get_json()
        return run

    def completed(self, **overrides: Any) -> dict[str, Any]:
        """A run of a new experiment, started and delivered to its end, which must be `completed`."""
        experiment = self.experiment(**overrides)
        run = self.started(experiment["experiment_id"])
        self.pump.settle()
        final = self.run(experiment["experiment_id"], run["run_id"])
        assert final["status"] == "completed", final
        return final

    def run(self, experiment_id: str, run_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        response = self.world.api.call(
            "experiments_run_get", "GET", f"{ROOT}/{experiment_id}/runs/{run_id}",
            tenant=tenant or self.world.tenant, role="viewer",
        )  # fmt: skip
        assert response.status_code == 200, response.get_data(as_text=True)
        found: dict[str, Any] = response.get_json()
        return found

    def metrics(self, experiment_id: str) -> dict[str, Any]:
        response = self.world.api.call(
            "experiments_metrics", "GET", f"{ROOT}/{experiment_id}/metrics", tenant=self.world.tenant,
            role="viewer",
        )  # fmt: skip
        assert response.status_code == 200, response.get_data(as_text=True)
        found: dict[str, Any] = response.get_json()
        return found

    def cancel(self, experiment_id: str, run_id: str, *, role: str = "editor") -> Any:
        return self.world.api.call(
            "experiments_run_cancel", "POST", f"{ROOT}/{experiment_id}/runs/{run_id}/cancel",
            tenant=self.world.tenant, role=role,
        )  # fmt: skip

    def jobs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's evaluation jobs, as stored."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        from promptopt.batch import paths as batch_paths

        query = batch_paths.jobs(self.world.tenant).where(filter=FieldFilter("owner.run_id", "==", run_id))
        return [s.to_dict() or {} for s in query.stream()]

    def versions(self, **query: Any) -> list[dict[str, Any]]:
        response = self.world.api.call(
            "prompts_versions", "GET", f"/api/v1/prompts/{self.world.prompt_id}/versions",
            tenant=self.world.tenant, role="viewer", query_string={"page_size": 100, **query},
        )  # fmt: skip
        assert response.status_code == 200, response.get_data(as_text=True)
        items: list[dict[str, Any]] = response.get_json()["items"]
        return items


def test_a_run_optimizes_the_prompt_end_to_end(runs: Runs) -> None:
    experiment = runs.experiment(promote_label="candidate")
    run = runs.started(experiment["experiment_id"])
    assert run["status"] == "queued"
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    assert final["lift"]["ci_low"] > 0, final  # a real, paired improvement on the held-out split
    assert final["best_version"] > 1
    metrics = runs.metrics(experiment["experiment_id"])
    assert metrics["simulated"] is True
    assert metrics["paired_lift"]["ci_low"] > 0
    assert metrics["best_test"]["mean"] > metrics["baseline_test"]["mean"]
    candidates = [c for it in metrics["iterations"] for c in it["candidates"]]
    assert any(c["accepted"] and c["candidate_id"] != engine.BASELINE for c in candidates)
    assert any(c["rung_scores"] for c in candidates if c["candidate_id"] != engine.BASELINE)
    versions = {v["version"]: v for v in runs.versions()}
    best = versions[final["best_version"]]
    assert best["provenance"]["source"] == "optimizer"
    assert best["provenance"]["details"]["run_id"] == run["run_id"]
    assert best["parent_id"] is not None
    assert "candidate" in best["labels"]
    # The lineage can be read by source: the user's versions apart from the optimizer's.
    assert [v["version"] for v in runs.versions(source="user")] == [1]
    optimized = runs.versions(source="optimizer")
    assert final["best_version"] in [v["version"] for v in optimized]
    assert {v["provenance"]["source"] for v in optimized} == {"optimizer"}
    # The estimate is an upper bound of what the run spent.
    estimate = experiment["estimate"]
    assert final["usage"]["task_calls"] <= estimate["task_calls"]
    assert final["usage"]["optimizer_calls"] <= estimate["optimizer_calls"]
    kinds = {e["kind"] for e in final["events"]}
    assert {"step", "finished"} <= kinds


def test_parents_incumbent_proposes_from_the_incumbent_alone(runs: Runs) -> None:
    # Seed 3: a run whose Pareto frontier holds more than the incumbent at some iteration, so
    # parents drawn from the frontier would differ.
    optimizer = {
        "parents": "incumbent",
        "strategy": "reflective",
        "max_iterations": 3,
        "patience": 3,
        "seed": 3,
    }
    experiment = runs.experiment(optimizer=optimizer)
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    assert runs.run(experiment["experiment_id"], run["run_id"])["status"] == "completed"
    incumbent = engine.BASELINE
    for iteration in runs.metrics(experiment["experiment_id"])["iterations"][1:]:
        candidates = iteration["candidates"]
        assert candidates
        assert {c["parent"] for c in candidates} == {incumbent}, (incumbent, candidates)
        incumbent = next((c["candidate_id"] for c in candidates if c["accepted"]), incumbent)


def test_the_chunks_take_the_steps_and_retire_their_messages(runs: Runs) -> None:
    """The chunk that completes a run's job scores it and advances the run: the job goes from
    running to completed in one commit, so no batch-completed is even recorded, and
    evaluation-completed is recorded with that commit but never published."""
    from promptopt import outbox
    from promptopt.batch import events
    from promptopt.batch import paths as batch_paths

    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    assert runs.pump.delivered.get("batch-completed", 0) == 0, runs.pump.delivered
    assert runs.pump.delivered.get("evaluation-completed", 0) == 0, runs.pump.delivered
    jobs = runs.jobs(run["run_id"])
    assert len(jobs) >= 4
    for job in jobs:
        assert (job["status"], job["evaluation"]["status"]) == ("completed", "completed"), job
        skipped = events.completed(runs.world.tenant, job["job_id"], "evaluating")
        assert not outbox.ref(skipped).get().exists, job["job_id"]
        evaluated = events.evaluated(runs.world.tenant, job["job_id"], "completed", job["owner"])
        assert (outbox.ref(evaluated).get().to_dict() or {}).get("state") == "handled", job["job_id"]
        ref = batch_paths.marker_ref(batch_paths.job_ref(runs.world.tenant, job["job_id"]), "completed")
        assert (ref.get().to_dict() or {}).get("published") is True, job["job_id"]  # the step is done


def test_a_job_that_cannot_be_scored_as_its_rows_finish_is_scored_the_usual_way(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring at once failing (here: always) costs a step nothing: the job goes through evaluating."""
    from promptopt import outbox
    from promptopt.batch import evaluation_step, events

    def fails(*_args: Any, **_kw: Any) -> bool:
        raise RuntimeError("scoring here failed")

    monkeypatch.setattr(evaluation_step, "finish_scored", fails)
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    for job in runs.jobs(run["run_id"]):
        assert (job["status"], job["evaluation"]["status"]) == ("completed", "completed"), job
        went = events.completed(runs.world.tenant, job["job_id"], "evaluating")  # it went through evaluating
        assert (outbox.ref(went).get().to_dict() or {}).get("state") == "handled", job["job_id"]


def test_a_step_uses_the_rows_its_scorer_holds_exactly_as_it_would_read_them(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk that scores a run's job hands its rows and scores to the transition instead of
    the transition reading them back: what it hands over must be what a read would give."""
    from promptopt.experiments import jobs as run_jobs

    read_result, compared = run_jobs.read_result, []

    def both(
        tenant: str, job_id: str, data: Any, metric: str, n_rows: int, *, given: Any = None, **kw: Any
    ) -> Any:
        result = read_result(tenant, job_id, data, metric, n_rows, given=given, **kw)
        if given is not None:
            compared.append((result, read_result(tenant, job_id, data, metric, n_rows)))
        return result

    monkeypatch.setattr(run_jobs, "read_result", both)
    runs.completed()
    assert len(compared) >= 3  # the baseline, a validation and the final step at least
    for held, read_back in compared:
        assert held == read_back
        assert held.tokens_per_row is not None
        assert any(held.outputs)


def test_a_step_reads_a_jobs_scores_and_cost_per_row_without_its_answers(runs: Runs) -> None:
    """Scoring sums each job's answer tokens into its scores, so a transition reads one document
    per job, not its results: what it reads must be what the results give, the answers aside."""
    from promptopt.batch import paths as batch_paths
    from promptopt.experiments import jobs as run_jobs

    run = runs.completed()
    jobs = runs.jobs(run["run_id"])
    assert len(jobs) >= 4
    metric = jobs[0]["evaluation"]["metrics"][0]["name"]
    for job in jobs:
        ref = batch_paths.job_ref(runs.world.tenant, job["job_id"])
        data = ref.get().to_dict() or {}
        n_rows = int(data["total_rows"])
        full = run_jobs.read_result(runs.world.tenant, job["job_id"], data, metric, n_rows)
        brief = run_jobs.read_result(runs.world.tenant, job["job_id"], data, metric, n_rows, outputs=False)
        assert brief.tokens_per_row is not None
        assert brief == dataclasses.replace(full, outputs=[""] * n_rows)
        assert "answer_tokens" in (ref.collection("scores").document(metric).get().to_dict() or {})


def test_a_step_uses_the_job_its_scorer_wrote_exactly_as_stored(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk that scores a run's job also hands the job's document, as it wrote it, to the
    transition, which then does not read the job again: what it hands over must be what is stored."""
    from promptopt.batch import paths as batch_paths
    from promptopt.experiments import jobs as run_jobs

    states, compared = run_jobs.states, []

    def both(tenant: str, job_ids: list[str], *, known: Any = None) -> Any:
        found = states(tenant, job_ids, known=known)
        for job_id in set(known or {}) & set(job_ids):
            compared.append((found[job_id], batch_paths.job_ref(tenant, job_id).get().to_dict()))
        return found

    monkeypatch.setattr(run_jobs, "states", both)
    runs.completed()
    assert len(compared) >= 3  # the baseline, a validation and the final step at least
    for (status, held), stored in compared:
        assert held == stored
        assert status == stored["status"] == "completed"


def test_a_runs_one_chunk_job_ends_its_rows_and_its_scoring_in_one_commit(
    runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    """The chunk that holds every row of a run's job writes its last rows, its chunk record, the
    completion marker (published), the scores and the move to completed in one commit; the job is
    still logged as having finished its rows (the jobs-finished metric counts that line)."""
    import logging

    from promptopt.batch import paths as batch_paths

    caplog.set_level(logging.INFO, logger="promptopt.batch")
    run = runs.completed()
    jobs = runs.jobs(run["run_id"])
    assert len(jobs) >= 4
    for job in jobs:
        ref = batch_paths.job_ref(runs.world.tenant, job["job_id"])
        metric = job["evaluation"]["metrics"][0]["name"]
        stored = ref.get()
        marker = batch_paths.marker_ref(ref, "completed").get()
        scores = ref.collection("scores").document(metric).get()
        assert (stored.get("status"), marker.get("published")) == ("completed", True)
        same = marker.create_time == marker.update_time == stored.update_time == scores.update_time
        assert same, job["job_id"]
    finished = {
        r.fields["job_id"]: r.fields["status"]  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage().startswith("job ") and "finished its rows" in r.getMessage()
    }
    assert finished == {job["job_id"]: "completed" for job in jobs}


def test_a_runs_job_whose_row_another_delivery_wrote_first_completes_the_usual_way(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one commit is refused when a concurrent delivery wrote one of its rows first; the rows
    then go one by one (theirs kept), and the job completes through the usual two commits."""
    from promptopt.batch import completion
    from promptopt.batch import paths as batch_paths
    from promptopt.batch.state import now

    real, theirs = completion.finish_only_chunk, []

    def raced(tenant: str, job_ref: Any, totals: Any, **kw: Any) -> bool:
        held = kw.get("results")
        if held and not theirs:  # the first job: another delivery creates one of its rows first
            first = {**held[0], "created_at": now()}
            batch_paths.results(job_ref).document(batch_paths.row_id(first["row"])).create(first)
            theirs.append((job_ref.id, first["row"]))
        return real(tenant, job_ref, totals, **kw)

    monkeypatch.setattr(completion, "finish_only_chunk", raced)
    run = runs.completed()
    assert len(theirs) == 1
    job_id, _row = theirs[0]
    job = next(j for j in runs.jobs(run["run_id"]) if j["job_id"] == job_id)
    assert (job["status"], job["evaluation"]["status"]) == ("completed", "completed")
    ref = batch_paths.job_ref(runs.world.tenant, job_id)
    assert len(list(batch_paths.results(ref).stream())) == int(job["total_rows"])
    marker = batch_paths.marker_ref(ref, "completed").get()
    assert marker.get("published") is True
    assert marker.create_time != marker.update_time  # created by the first commit, published by the second


def test_chunk_tasks_delivered_twice_at_once_change_nothing(runs: Runs) -> None:
    """Two deliveries of every chunk race to complete, score and advance each step (one that finds
    the other mid-way publishes batch-completed, whose consumer then finds the job scored)."""
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.duplicate_tasks = True
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    for job in runs.jobs(run["run_id"]):
        assert (job["status"], job["evaluation"]["status"]) == ("completed", "completed"), job
    made = [v for v in runs.versions() if v["provenance"]["source"] == "optimizer"]
    keys = [v["provenance"]["details"]["candidate_key"] for v in made]
    assert len(keys) == len(set(keys))  # one version per validated candidate, however often it ran


@pytest.fixture
def messages_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunks leave scoring and the run's next step to the messages (as after a crash)."""
    from promptopt.batch import runner

    monkeypatch.setattr(runner, "CARRY_ON", False)


@pytest.mark.usefixtures("messages_only")
def test_messages_delivered_twice_and_out_of_order_change_nothing(runs: Runs) -> None:
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.duplicate = True
    runs.pump.shuffle = random.Random(7)
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    # One version per validated candidate, however often each step ran.
    made = [v for v in runs.versions() if v["provenance"]["source"] == "optimizer"]
    keys = [v["provenance"]["details"]["candidate_key"] for v in made]
    assert len(keys) == len(set(keys))


def _count_optimizer_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every optimizer call the platform makes, by thread-safe append."""
    calls: list[str] = []
    original = SimOptimizer.complete

    def counted(self: SimOptimizer, request: Any) -> Any:
        calls.append(request.system_prompt[:20])
        return original(self, request)

    monkeypatch.setattr(SimOptimizer, "complete", counted)
    return calls


@pytest.mark.usefixtures("messages_only")
def test_concurrent_deliveries_of_one_step_call_the_optimizer_once(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_optimizer_calls(monkeypatch)
    experiment = runs.experiment(optimizer={"strategy": "reflective"})
    run = runs.started(experiment["experiment_id"])
    runs.pump.duplicate = runs.pump.together = True  # every message twice, both at once
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    # Only the winning transition's calls are counted in the run's usage: any other call was paid
    # for by a delivery whose step was thrown away.
    assert final["usage"]["optimizer_calls"] > 0
    assert len(calls) == final["usage"]["optimizer_calls"], (len(calls), final["usage"])


def test_a_step_claimed_by_a_dead_delivery_is_taken_over_after_its_lease(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from promptopt.experiments import claims, propose

    original = propose.candidates
    died: list[str] = []

    def die_once(run: engine.Run, step: engine.Step, *, iteration: int) -> Any:
        if not died:  # the process dies after claiming the step, before its optimizer calls
            died.append(run.run_id)
            raise RuntimeError("simulated crash after the claim")
        return original(run, step, iteration=iteration)

    monkeypatch.setattr(propose, "candidates", die_once)
    monkeypatch.setattr(claims, "release", lambda *a, **k: None)  # a dead process releases nothing
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    assert died
    stalled = runs.run(experiment["experiment_id"], run["run_id"])
    assert stalled["status"] == "running"  # the redelivery found the step claimed and left it
    later = datetime.now(UTC) + claims.LEASE + timedelta(minutes=2)
    monkeypatch.setattr(engine, "now", lambda: later)
    report = tick.run_tick(later)
    assert "re-driven" in report
    runs.pump.settle()
    assert runs.run(experiment["experiment_id"], run["run_id"])["status"] == "completed"


@pytest.mark.usefixtures("messages_only")
def test_a_lost_message_is_redriven_by_the_sweeper(runs: Runs) -> None:
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    lost: list[str] = []

    def lose_evaluations(topic: str, payload: dict[str, Any]) -> bool:
        if topic == "evaluation-completed":  # as if the step crashed after each job was scored
            lost.append(payload["job_id"])
            return True
        return False

    runs.pump.drop = lose_evaluations
    runs.pump.settle()
    stalled = runs.run(experiment["experiment_id"], run["run_id"])
    assert stalled["status"] == "running"  # nothing else would ever advance it
    assert lost
    runs.pump.drop = None
    report = tick.run_tick(engine.now() + timedelta(minutes=10))
    assert "re-driven" in report
    runs.pump.settle()
    assert runs.run(experiment["experiment_id"], run["run_id"])["status"] == "completed"


@pytest.mark.parametrize("carry_on", [True, False], ids=["in_the_chunk", "by_messages"])
@pytest.mark.parametrize("phase", ["baseline", "screen", "validate", "final"])
def test_a_crash_after_any_transition_is_repaired_by_the_redelivery(
    runs: Runs, monkeypatch: pytest.MonkeyPatch, phase: str, carry_on: bool
) -> None:
    """by_messages: the message's handler fails and its redelivery repairs the step; in_the_chunk:
    the chunk that advanced the run fails after the write, and the evaluation-completed message
    that follows repairs it."""
    from promptopt.batch import runner

    monkeypatch.setattr(runner, "CARRY_ON", carry_on)
    original = engine._ensure_jobs
    crashed: list[str] = []

    def crash_once(run: engine.Run, **kwargs: Any) -> None:
        # The transition into `phase` is written; the process dies before creating its jobs.
        if run.state.get("phase") == phase and not crashed and run.state.get("waiting"):
            crashed.append(run.run_id)
            raise RuntimeError("simulated crash between the write and its effects")
        original(run, **kwargs)

    monkeypatch.setattr(engine, "_ensure_jobs", crash_once)
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    assert crashed
    if phase == "baseline" or not carry_on:  # the start step is always a message's
        assert runs.pump.failures >= 1
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final


def test_two_tenants_run_at_once_without_seeing_each_other(runs: Runs, tenant: str) -> None:
    from tests.integration.experiments.conftest import Experiments

    other_world = Experiments(api=runs.world.api, ingest=runs.world.ingest, tenant=tenant + "-b")
    other_world.dataset_id = other_world.dataset()
    other_world.prompt_id = other_world.prompt()
    other = Runs(other_world, runs.pump)
    mine, theirs = runs.experiment(), other.experiment()
    run_a = runs.started(mine["experiment_id"])
    run_b = other.started(theirs["experiment_id"])
    runs.pump.settle()
    assert runs.run(mine["experiment_id"], run_a["run_id"])["status"] == "completed"
    assert other.run(theirs["experiment_id"], run_b["run_id"])["status"] == "completed"
    listed = runs.world.list().get_json()["items"]
    assert [e["experiment_id"] for e in listed] == [mine["experiment_id"]]
    seen = runs.world.api.call(
        "experiments_run_get", "GET", f"{ROOT}/{theirs['experiment_id']}/runs/{run_b['run_id']}",
        tenant=runs.world.tenant, role="admin",
    )  # fmt: skip
    assert seen.status_code == 404


def test_the_optimizer_never_sees_the_report_split(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    original = SimOptimizer.complete

    def recording(self: SimOptimizer, request: Any) -> Any:
        shown.append(request.system_prompt + "\n" + request.user_prompt)
        return original(self, request)

    monkeypatch.setattr(SimOptimizer, "complete", recording)
    run = runs.completed()
    assert shown
    from promptopt.experiments.rows import split_rows

    stored = paths.run_ref(runs.world.tenant, run["experiment_id"], run["run_id"]).get().to_dict()
    cfg = stored["config"]
    report = split_rows(runs.world.tenant, cfg["dataset_id"], cfg["dataset_version"], "test", 1000)
    optimize = split_rows(runs.world.tenant, cfg["dataset_id"], cfg["dataset_version"], "train", 1000)
    train_inputs = {r.inputs["input"] for r in optimize}
    held_out = [r.inputs["input"] for r in report if r.inputs["input"] not in train_inputs]
    assert held_out
    for text in shown:
        assert not any(row in text for row in held_out)


@pytest.mark.parametrize(
    "reply",
    [
        "not json at all",
        json.dumps({"critique": "x", "system_prompt": "s", "output_prompt": "no placeholder"}),
        "x" * 1_000_000,
    ],
)
def test_garbage_optimizer_replies_are_rejected_and_counted(
    runs: Runs, monkeypatch: pytest.MonkeyPatch, reply: str
) -> None:
    original = SimOptimizer.complete

    def garbage(self: SimOptimizer, request: Any) -> Any:
        completion = original(self, request)
        return completion._replace(text=reply)

    monkeypatch.setattr(SimOptimizer, "complete", garbage)
    experiment = runs.experiment(optimizer={"strategy": "reflective"})
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "completed", final
    assert final["best_version"] == 1  # nothing was accepted, nothing stored as a prompt
    assert [v["version"] for v in runs.versions()] == [1]
    assert sum(1 for e in final["events"] if e["kind"] == "rejected") >= 4


def test_cancel_stops_new_work_at_once(runs: Runs) -> None:
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.round()
    runs.pump.round()
    assert runs.cancel(experiment["experiment_id"], run["run_id"], role="viewer").status_code == 403
    response = runs.cancel(experiment["experiment_id"], run["run_id"])
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "cancelled"
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "cancelled"
    assert runs.cancel(experiment["experiment_id"], run["run_id"]).status_code == 200  # again: same answer
    # A new run may start once the old one is cancelled.
    assert runs.start(experiment["experiment_id"]).status_code == 202


def test_a_cancel_while_a_step_creates_its_jobs_cancels_them(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptopt.experiments import jobs as run_jobs

    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    runs.pump.round()  # the baseline step
    create = run_jobs.create
    cancelled: list[str] = []
    once = threading.Lock()  # the step creates its jobs on several threads

    created: list[str] = []

    def cancel_first(*args: Any, **kwargs: Any) -> str:
        mine = args[2] == run["run_id"]  # (tenant, experiment_id, run_id, ...): other tests' runs may move
        with once:
            if mine and not cancelled:  # the user cancels while the next step's jobs are being created
                response = runs.cancel(experiment["experiment_id"], run["run_id"])
                cancelled.append(response.get_json()["status"])
        job_id: str = create(*args, **kwargs)
        if mine:
            created.append(job_id)
        return job_id

    monkeypatch.setattr(run_jobs, "create", cancel_first)
    runs.pump.settle()
    assert cancelled == ["cancelled"]
    assert runs.run(experiment["experiment_id"], run["run_id"])["status"] == "cancelled"
    assert created
    from promptopt.batch import paths as batch_paths

    jobs = [batch_paths.job_ref(runs.world.tenant, j).get().to_dict() or {} for j in created]
    # The jobs created after the cancel were cancelled before any of their chunks ran.
    assert {j.get("status") for j in jobs} == {"cancelled"}, jobs
    assert all(not j.get("totals") or j["totals"]["calls"] == 0 for j in jobs), jobs


def test_a_budget_reached_mid_run_keeps_what_was_paid_for(runs: Runs) -> None:
    experiment = runs.experiment(budget={"max_calls": 150})
    run = runs.started(experiment["experiment_id"])
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "budget_exhausted", final
    usage = final["usage"]
    assert usage["task_calls"] + usage["optimizer_calls"] <= 150
    assert final["baseline"] is not None  # the baseline's validation score is still reported
    assert "max_calls" in final["reason"]


def test_start_is_idempotent_and_exclusive(runs: Runs) -> None:
    experiment = runs.experiment()
    first = runs.started(experiment["experiment_id"], headers={"Idempotency-Key": "k1"})
    again = runs.started(experiment["experiment_id"], headers={"Idempotency-Key": "k1"})
    assert again["run_id"] == first["run_id"]
    busy = runs.start(experiment["experiment_id"])
    assert busy.status_code == 409
    assert busy.get_json()["code"] == "run_active"
    assert runs.start(experiment["experiment_id"], role="viewer").status_code == 403


def test_a_start_answers_the_run_as_its_read_does_and_takes_a_budget_body(runs: Runs) -> None:
    experiment = runs.experiment()
    eid = experiment["experiment_id"]
    response = runs.start(eid, json={"budget": {"max_calls": 40}})
    assert response.status_code == 202, response.get_data(as_text=True)
    started = response.get_json()
    assert response.headers["Location"] == f"{ROOT}/{eid}/runs/{started['run_id']}"
    assert started == runs.run(eid, started["run_id"])  # before any step ran
    stored = paths.run_ref(runs.world.tenant, eid, started["run_id"]).get().to_dict() or {}
    assert stored["budget"]["max_calls"] == 40
    refused = runs.start(eid, json={"budget": {"max_calls": 0}})
    assert (refused.status_code, refused.get_json()["code"]) == (400, "validation_failed")


def test_settings_stored_before_a_field_existed_are_completed_when_a_run_starts(runs: Runs) -> None:
    from google.cloud.firestore import DELETE_FIELD

    experiment = runs.experiment(optimizer={"max_demos": 5})
    eid = experiment["experiment_id"]
    paths.experiment_ref(runs.world.tenant, eid).update({"optimizer.max_demos": DELETE_FIELD})
    run = runs.started(eid)
    stored = paths.run_ref(runs.world.tenant, eid, run["run_id"]).get().to_dict() or {}
    assert stored["config"]["optimizer"]["max_demos"] == 3  # the model's default, not a KeyError
    assert stored["config"]["optimizer"]["max_iterations"] == SETTINGS["max_iterations"]


def test_other_tenants_see_nothing(runs: Runs) -> None:
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    api, other = runs.world.api, "someone-else"
    eid, rid = experiment["experiment_id"], run["run_id"]
    for function, method, path in [
        ("experiments_start", "POST", f"{ROOT}/{eid}/start"),
        ("experiments_runs_list", "GET", f"{ROOT}/{eid}/runs"),
        ("experiments_run_get", "GET", f"{ROOT}/{eid}/runs/{rid}"),
        ("experiments_run_cancel", "POST", f"{ROOT}/{eid}/runs/{rid}/cancel"),
        ("experiments_metrics", "GET", f"{ROOT}/{eid}/metrics"),
    ]:
        response = api.call(function, method, path, tenant=other, role="admin")
        assert response.status_code == 404, (function, response.get_data(as_text=True))
    listed = api.call(
        "experiments_runs_list", "GET", f"{ROOT}/{eid}/runs", tenant=runs.world.tenant, role="viewer"
    )
    assert [r["run_id"] for r in listed.get_json()["items"]] == [rid]


def test_a_duplicated_or_late_tick_starts_one_run_per_slot(runs: Runs) -> None:
    experiment = runs.experiment(schedule={"cron": "*/5 * * * *"})
    eid = experiment["experiment_id"]
    due = paths.experiment_ref(runs.world.tenant, eid).get().to_dict()["next_run_at"]
    later = due + timedelta(seconds=1)
    tick.run_tick(later)
    tick.run_tick(later)  # a duplicated tick
    listed = runs.world.api.call(
        "experiments_runs_list", "GET", f"{ROOT}/{eid}/runs", tenant=runs.world.tenant, role="viewer"
    )
    found = listed.get_json()["items"]
    assert len(found) == 1
    assert found[0]["trigger"] == "schedule"
    moved = paths.experiment_ref(runs.world.tenant, eid).get().to_dict()["next_run_at"]
    assert moved > due


def test_a_regression_run_compares_with_the_previous_run(runs: Runs) -> None:
    from promptopt.experiments.steps import StepMessage

    del StepMessage
    api, tenant = runs.world.api, runs.world.tenant
    label = api.call(
        "prompts_label_set", "PUT", f"/api/v1/prompts/{runs.world.prompt_id}/labels/production",
        tenant=tenant, role="editor", json={"version": 1},
    )  # fmt: skip
    assert label.status_code == 200, label.get_data(as_text=True)
    experiment = runs.experiment(mode="regression", regression={"label": "production", "max_drop": 0.05})
    eid = experiment["experiment_id"]
    first = runs.started(eid)
    runs.pump.settle()
    assert runs.run(eid, first["run_id"])["status"] == "completed"
    # A worse version behind the label: the format instruction is gone, so exact_match drops.
    better = api.call(
        "prompts_update", "PUT", f"/api/v1/prompts/{runs.world.prompt_id}", tenant=tenant, role="editor",
        headers={"If-Match": '"v1"'},
        json={"system_prompt": "Evaluate the expression. Answer with True or False only."},
    )  # fmt: skip
    assert better.status_code == 200, better.get_data(as_text=True)
    api.call(
        "prompts_label_set", "PUT", f"/api/v1/prompts/{runs.world.prompt_id}/labels/production",
        tenant=tenant, role="editor", json={"version": 2},
    )  # fmt: skip
    second = runs.started(eid)
    runs.pump.settle()
    improved = runs.run(eid, second["run_id"])
    assert improved["status"] == "completed", improved
    assert improved["lift"]["mean"] > 0
    api.call(
        "prompts_label_set", "PUT", f"/api/v1/prompts/{runs.world.prompt_id}/labels/production",
        tenant=tenant, role="editor", json={"version": 1},
    )  # fmt: skip
    third = runs.started(eid)
    runs.pump.settle()
    regressed = runs.run(eid, third["run_id"])
    assert regressed["status"] == "regressed", regressed
    alerts = [json.loads(base64.b64decode(e["message"]["data"])) for e in runs.pump.pull("experiment-alerts")]
    assert any(a["run_id"] == third["run_id"] for a in alerts)


def test_a_run_idle_for_hours_is_failed_with_a_reason(runs: Runs) -> None:
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    step = [
        e
        for e in runs.pump.pull("experiment-step")
        if json.loads(base64.b64decode(e["message"]["data"]))["run_id"] == run["run_id"]
    ]  # the first step runs; its jobs' tasks never do
    assert step
    assert runs.world.api.client("experiments_step").post("/", json=step[0]).status_code in (200, 204)
    tick.run_tick(engine.now() + timedelta(hours=7))
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "failed"
    assert "no progress" in final["reason"]
    # The experiment is free for a new run.
    assert runs.start(experiment["experiment_id"]).status_code == 202


def test_a_step_failing_on_its_last_delivery_fails_the_run_with_the_reason(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(run: engine.Run, results: Any) -> engine.Step:
        raise RuntimeError("a bug in the step")

    monkeypatch.setattr(engine, "_next", broken)
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    mine = [
        e
        for e in runs.pump.pull("experiment-step")
        if json.loads(base64.b64decode(e["message"]["data"]))["run_id"] == run["run_id"]
    ]  # messages of earlier tests' runs may still be on the subscription
    (envelope,) = mine
    client = runs.world.api.client("experiments_step")
    assert client.post("/", json={**envelope, "deliveryAttempt": 3}).status_code >= 500  # redelivered
    assert runs.run(experiment["experiment_id"], run["run_id"])["status"] == "queued"
    assert client.post("/", json={**envelope, "deliveryAttempt": 10}).status_code in (200, 204)
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "failed"
    assert "RuntimeError" in final["reason"]
    assert runs.start(experiment["experiment_id"]).status_code == 202  # the experiment is free again
