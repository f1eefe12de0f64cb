"""The experiment endpoints through their real apps: create, estimate, read, list, update, delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from promptopt.auth import Principal, Role
from promptopt.experiments import paths
from promptopt.experiments import service as experiments_service
from promptopt.experiments.models import ExperimentCreate
from promptopt.store.paths import tenant_collection
from tests.integration.experiments.conftest import Experiments
from tests.support import new_tenant

pytestmark = pytest.mark.integration


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.get_json()
    assert problem["code"] == code, problem
    return problem


def test_create_answers_201_with_the_experiment_and_its_estimate(experiments: Experiments) -> None:
    response = experiments.create(experiments.body(description="first try", promote_label="production"))
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert paths.EXPERIMENT_ID_RE.fullmatch(created["experiment_id"])
    assert response.headers["Location"] == f"/api/v1/experiments/{created['experiment_id']}"
    assert (created["name"], created["description"], created["mode"]) == (
        "boolean expressions",
        "first try",
        "optimize",
    )
    assert (created["target_model"], created["optimizer_model"]) == ("sim:default", "sim:optimizer")
    assert created["prompt"] == {"prompt_id": experiments.prompt_id, "version": None, "label": None}
    assert created["dataset"]["version"] == 1  # the newest ready version, pinned
    assert created["metric"] == {"name": "exact_match", "params": {}}
    assert created["promote_label"] == "production"
    assert (created["active_run_id"], created["last_run_status"], created["runs"]) == (None, None, 0)
    assert created["next_run_at"] is None
    assert created["created_by"] == "user-1"
    estimate = created["estimate"]
    assert estimate["task_calls"] > 0
    assert estimate["optimizer_calls"] == 2 * 4
    assert estimate["cost_usd"] == 0
    assert estimate["within_budget"] is True
    assert sum(t["calls"] for t in estimate["terms"]) == estimate["task_calls"] + estimate["optimizer_calls"]

    fetched = experiments.get(created["experiment_id"])
    assert fetched.status_code == 200
    assert fetched.get_json() == {k: v for k, v in created.items() if k != "estimate"}


def test_the_optimizer_defaults_to_a_real_target_model(experiments: Experiments) -> None:
    created = experiments.created(target_model="gemini:gemini-2.5-flash", budget={"max_cost_usd": 0.01})
    assert created["optimizer_model"] == "gemini:gemini-2.5-flash"
    assert created["estimate"]["cost_usd"] > 0.01
    assert created["estimate"]["within_budget"] is False


def test_a_schedule_given_at_creation_sets_the_next_run(experiments: Experiments) -> None:
    on = experiments.created(schedule={"cron": "30 6 * * *", "time_zone": "Asia/Tokyo"})
    next_run = datetime.fromisoformat(on["next_run_at"])
    assert next_run.utcoffset() == timedelta(0)
    assert next_run.strftime("%H:%M") == "21:30"  # 06:30 in Tokyo (no daylight saving)
    off = experiments.created(schedule={"cron": "30 6 * * *", "enabled": False})
    assert off["next_run_at"] is None
    assert off["schedule"] == {"cron": "30 6 * * *", "time_zone": "Etc/UTC", "enabled": False}


NO_PROMPT, NO_DATASET = "pr_0123456789abcdef0123", "ds_0123456789abcdef0123"
# Each builds a body that fails one check, given the tenant's world.
Mutation = Callable[[Experiments], dict[str, Any]]


def _missing_variables(w: Experiments) -> dict[str, Any]:
    other = w.prompt(output_prompt="{input} {question} {context}")
    return w.body(prompt={"prompt_id": other})


def _no_reference(w: Experiments) -> dict[str, Any]:
    return w.body(dataset={"dataset_id": w.dataset(mapping={"inputs": ["input"]})})


def _empty_split(w: Experiments) -> dict[str, Any]:
    dataset = w.dataset(splits={"train": 0.8, "validation": 0.2, "test": 0.0})
    return w.body(dataset={"dataset_id": dataset})


FAILURES: list[tuple[str, Mutation, int, str]] = [
    ("unknown prompt", lambda w: w.body(prompt={"prompt_id": NO_PROMPT}), 404, "prompt_not_found"),
    ("malformed prompt id", lambda w: w.body(prompt={"prompt_id": "nope"}), 404, "prompt_not_found"),
    (
        "no such label",
        lambda w: w.body(prompt={"prompt_id": w.prompt_id, "label": "prod"}),
        404,
        "label_not_found",
    ),
    (
        "no such version",
        lambda w: w.body(prompt={"prompt_id": w.prompt_id, "version": 7}),
        404,
        "version_not_found",
    ),
    ("unknown dataset", lambda w: w.body(dataset={"dataset_id": NO_DATASET}), 404, "dataset_not_found"),
    (
        "dataset not ready",
        lambda w: w.body(dataset={"dataset_id": w.dataset(ready=False)}),
        409,
        "dataset_not_ready",
    ),
    (
        "dataset version not ready",
        lambda w: w.body(dataset={"dataset_id": w.dataset(ready=False), "version": 1}),
        409,
        "dataset_not_ready",
    ),
    ("missing variables", _missing_variables, 400, "missing_variables"),
    ("metric needs a reference", _no_reference, 400, "reference_required"),
    (
        "bad metric params",
        lambda w: w.body(metric={"name": "regex", "params": {"pattern": "("}}),
        400,
        "validation_failed",
    ),
    (
        "bad secondary metric params",
        lambda w: w.body(secondary_metrics=[{"name": "numeric", "params": {"tolerance": "wide"}}]),
        400,
        "validation_failed",
    ),
    ("unknown metric", lambda w: w.body(metric={"name": "bleu"}), 400, "validation_failed"),
    ("empty split", _empty_split, 400, "empty_split"),
    ("unknown target provider", lambda w: w.body(target_model="acme:model-1"), 400, "unknown_model"),
    ("unknown optimizer provider", lambda w: w.body(optimizer_model="acme:model-1"), 400, "unknown_model"),
    ("bad cron", lambda w: w.body(schedule={"cron": "61 * * * *"}), 400, "invalid_schedule"),
    ("six-field cron", lambda w: w.body(schedule={"cron": "0 0 9 * * 1"}), 400, "invalid_schedule"),
    (
        "unknown time zone",
        lambda w: w.body(schedule={"cron": "0 9 * * 1", "time_zone": "Mars/Base"}),
        400,
        "invalid_schedule",
    ),
    (
        "paused but invalid",
        lambda w: w.body(schedule={"cron": "nope nope", "enabled": False}),
        400,
        "invalid_schedule",
    ),
    ("regression label absent", lambda w: w.body(mode="regression"), 404, "label_not_found"),
    (
        "report split not held out",
        lambda w: w.body(dataset={"dataset_id": w.dataset_id, "report_split": "train"}),
        400,
        "validation_failed",
    ),
    ("unknown field", lambda w: w.body(shots=3), 400, "validation_failed"),
]


@pytest.mark.parametrize(
    ("mutation", "status", "code"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_each_failed_check_has_its_status_and_code(
    experiments: Experiments, mutation: Mutation, status: int, code: str
) -> None:
    body = mutation(experiments)
    _problem(experiments.create(body), status, code)
    _problem(experiments.estimate(body), status, code)
    assert experiments.list().get_json()["items"] == []


def test_missing_variables_are_named(experiments: Experiments) -> None:
    problem = _problem(experiments.create(_missing_variables(experiments)), 400, "missing_variables")
    assert problem["extra"]["missing"] == ["question", "context"]
    assert "question, context" in problem["detail"]


def test_a_regression_experiment_evaluates_its_label(experiments: Experiments) -> None:
    label = experiments.api.call(
        "prompts_label_set", "PUT", f"/api/v1/prompts/{experiments.prompt_id}/labels/production",
        tenant=experiments.tenant, role="editor", json={"version": 1},
    )  # fmt: skip
    assert label.status_code == 200, label.get_data(as_text=True)
    created = experiments.created(mode="regression", regression={"split": "validation"})
    assert created["regression"] == {"label": "production", "split": "validation", "max_drop": 0.02}
    estimate = created["estimate"]
    assert estimate["optimizer_calls"] == 0
    assert [t["step"] for t in estimate["terms"]] == ["regression"]
    optimize = experiments.estimate(experiments.body()).get_json()
    assert estimate["task_calls"] < optimize["task_calls"]


def test_the_same_idempotency_key_makes_one_experiment(experiments: Experiments) -> None:
    body = experiments.body()
    first = experiments.create(body, headers={"Idempotency-Key": "exp-key-1"})
    again = experiments.create(body, headers={"Idempotency-Key": "exp-key-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["experiment_id"] == first.get_json()["experiment_id"]
    other = experiments.create({**body, "name": "another"}, headers={"Idempotency-Key": "exp-key-1"})
    _problem(other, 422, "idempotency_key_reused")
    assert len(experiments.list().get_json()["items"]) == 1


def test_a_retry_that_lost_its_idempotency_record_finds_the_same_experiment(experiments: Experiments) -> None:
    """The id derives from key and body, so the write itself is idempotent (a crash after the commit)."""
    principal = Principal(subject="user-1", tenant=experiments.tenant, role=Role.editor)
    body = ExperimentCreate.model_validate(experiments.body())
    first = experiments_service.create_experiment(principal=principal, body=body, idempotency_key="k-2")
    again = experiments_service.create_experiment(principal=principal, body=body, idempotency_key="k-2")
    assert again["experiment_id"] == first["experiment_id"]
    assert again["estimate"] == first["estimate"]
    keyless = experiments_service.create_experiment(principal=principal, body=body, idempotency_key=None)
    assert keyless["experiment_id"] != first["experiment_id"]


def _page_through(experiments: Experiments, **query: Any) -> list[list[dict[str, Any]]]:
    pages, token = [], None
    while True:
        response = experiments.list(page_size=3, **query, **({"page_token": token} if token else {}))
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        pages.append(page["items"])
        token = page["next_page_token"]
        if not token:
            return pages


def test_list_pages_newest_first_and_filters_by_name_and_status(experiments: Experiments) -> None:
    ids = [experiments.created(name=f"Sweep {i}")["experiment_id"] for i in range(8)]
    pages = _page_through(experiments)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [e["experiment_id"] for p in pages for e in p] == ids[::-1]

    named = experiments.list(name="sweep 3").get_json()["items"]
    assert [e["experiment_id"] for e in named] == [ids[3]]
    assert experiments.list(name="Sweep").get_json()["items"] == []

    # The run engine records each run's status on the experiment; listing filters on it.
    paths.experiment_ref(experiments.tenant, ids[5]).update({"last_run_status": "completed"})
    done = experiments.list(status="completed").get_json()["items"]
    assert [(e["experiment_id"], e["last_run_status"]) for e in done] == [(ids[5], "completed")]
    assert experiments.list(status="running").get_json()["items"] == []
    _problem(experiments.list(status="finished"), 400, "validation_failed")

    token = experiments.list(page_size=3).get_json()["next_page_token"]
    _problem(experiments.list(page_size=3, name="sweep 1", page_token=token), 400, "invalid_page_token")
    _problem(experiments.list(page_token="not-a-token"), 400, "invalid_page_token")
    _problem(experiments.list(sort="size"), 400, "validation_failed")


def test_patch_sets_pauses_resumes_and_clears_the_schedule(experiments: Experiments) -> None:
    experiment_id = experiments.created()["experiment_id"]
    ref = paths.experiment_ref(experiments.tenant, experiment_id)

    on = experiments.patch(experiment_id, {"schedule": {"cron": "0 9 * * 1", "time_zone": "Europe/Paris"}})
    assert on.status_code == 200, on.get_data(as_text=True)
    view = on.get_json()
    first = datetime.fromisoformat(view["next_run_at"])
    assert first.utcoffset() == timedelta(0)
    local = first.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert ref.get().get("next_run_at") == first  # stored as a timestamp the tick can compare

    paused = experiments.patch(experiment_id, {"schedule_enabled": False}).get_json()
    assert paused["next_run_at"] is None
    assert paused["schedule"] == {"cron": "0 9 * * 1", "time_zone": "Europe/Paris", "enabled": False}
    assert ref.get().get("next_run_at") is None

    resumed = experiments.patch(experiment_id, {"schedule_enabled": True}).get_json()
    assert datetime.fromisoformat(resumed["next_run_at"]) == first
    assert resumed["schedule"]["enabled"] is True

    cleared = experiments.patch(experiment_id, {"schedule": None}).get_json()
    assert (cleared["schedule"], cleared["next_run_at"]) == (None, None)
    _problem(experiments.patch(experiment_id, {"schedule_enabled": True}), 400, "no_schedule")
    _problem(experiments.patch(experiment_id, {"schedule": {"cron": "0 25 * * *"}}), 400, "invalid_schedule")
    _problem(experiments.patch(experiment_id, {}), 400, "empty_update")
    _problem(experiments.patch(experiment_id, {"target_model": "sim:x"}), 400, "validation_failed")
    assert experiments.get(experiment_id).get_json() == cleared


def test_patch_renames_describes_and_sets_the_promote_label(experiments: Experiments) -> None:
    experiment_id = experiments.created()["experiment_id"]
    renamed = experiments.patch(
        experiment_id, {"name": "  Nightly BBH  ", "description": "d", "promote_label": "prod"}
    )
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    view = renamed.get_json()
    assert (view["name"], view["description"], view["promote_label"]) == ("Nightly BBH", "d", "prod")
    assert [e["experiment_id"] for e in experiments.list(name="nightly bbh").get_json()["items"]] == [
        experiment_id
    ]
    assert experiments.list(name="boolean expressions").get_json()["items"] == []
    cleared = experiments.patch(experiment_id, {"promote_label": None}).get_json()
    assert (cleared["promote_label"], cleared["name"]) == (None, "Nightly BBH")
    assert cleared["updated_at"] > cleared["created_at"]


def test_delete_removes_the_experiment_with_its_runs(experiments: Experiments) -> None:
    experiment_id = experiments.created()["experiment_id"]
    tenant = experiments.tenant
    runs = paths.runs(tenant, experiment_id)
    for r in range(3):  # as the run engine would leave them
        run = paths.run_ref(tenant, experiment_id, f"run_{r:020d}")
        run.set({"status": "completed"})
        for c in range(3):
            paths.candidates(run).document(paths.candidate_id(1, c)).set({"text": "x"})
        paths.events(run).document(f"e{r}").set({"kind": "step"})
    # a run document already gone whose events remain is found too
    paths.events(paths.run_ref(tenant, experiment_id, "run_" + "f" * 20)).document("e").set({"kind": "x"})

    deleted = experiments.delete(experiment_id)
    assert deleted.status_code == 204, deleted.get_data(as_text=True)
    assert deleted.get_data() == b""
    _problem(experiments.get(experiment_id), 404, "experiment_not_found")
    _problem(experiments.delete(experiment_id), 404, "experiment_not_found")
    assert list(runs.list_documents()) == []
    assert not paths.experiment_ref(tenant, experiment_id).get().exists
    assert experiments.list().get_json()["items"] == []


def test_an_experiment_with_an_active_run_is_not_deleted(experiments: Experiments) -> None:
    experiment_id = experiments.created()["experiment_id"]
    ref = paths.experiment_ref(experiments.tenant, experiment_id)
    ref.update({"active_run_id": "run_" + "1" * 20, "last_run_status": "running"})
    problem = _problem(experiments.delete(experiment_id), 409, "experiment_active")
    assert problem["extra"]["run_id"] == "run_" + "1" * 20
    assert experiments.get(experiment_id).status_code == 200
    ref.update({"active_run_id": None, "last_run_status": "completed"})
    assert experiments.delete(experiment_id).status_code == 204


def test_a_delete_cut_short_is_finished_by_the_next(experiments: Experiments) -> None:
    experiment_id = experiments.created()["experiment_id"]
    ref = paths.experiment_ref(experiments.tenant, experiment_id)
    ref.update({"deleting": True})  # as a delete that timed out after marking it leaves it
    paths.run_ref(experiments.tenant, experiment_id, "run_" + "2" * 20).set({"status": "failed"})
    _problem(experiments.get(experiment_id), 404, "experiment_not_found")
    _problem(experiments.patch(experiment_id, {"name": "x"}), 404, "experiment_not_found")
    assert experiments.list().get_json()["items"] == []
    assert experiments.delete(experiment_id).status_code == 204
    assert not ref.get().exists
    assert list(paths.runs(experiments.tenant, experiment_id).list_documents()) == []


def test_another_tenant_gets_404_on_every_route(experiments: Experiments) -> None:
    experiment_id = experiments.created()["experiment_id"]
    intruder = new_tenant()
    _problem(experiments.get(experiment_id, tenant=intruder, role="admin"), 404, "experiment_not_found")
    _problem(
        experiments.patch(experiment_id, {"name": "mine"}, tenant=intruder, role="admin"),
        404,
        "experiment_not_found",
    )
    _problem(experiments.delete(experiment_id, tenant=intruder), 404, "experiment_not_found")
    assert experiments.list(tenant=intruder).get_json()["items"] == []
    # Creating or estimating over the owner's prompt and dataset finds neither.
    body = experiments.body()
    _problem(experiments.create(body, tenant=intruder, role="admin"), 404, "prompt_not_found")
    _problem(experiments.estimate(body, tenant=intruder), 404, "prompt_not_found")
    assert experiments.get(experiment_id).status_code == 200
    assert experiments.get(experiment_id).get_json()["name"] == "boolean expressions"
    for bad in ("ex_123", "EX_0123456789ABCDEF0123", "ex_0123456789abcdef0123", "ex_0123456789abcdef012g"):
        _problem(experiments.get(bad), 404, "experiment_not_found")


def test_roles_viewer_reads_and_estimates_editor_writes_admin_deletes(experiments: Experiments) -> None:
    body = experiments.body()
    _problem(experiments.create(body, role="viewer"), 403, "role_too_low")
    experiment_id = experiments.created()["experiment_id"]
    _problem(experiments.patch(experiment_id, {"name": "x"}, role="viewer"), 403, "role_too_low")
    _problem(experiments.delete(experiment_id, role="editor"), 403, "role_too_low")
    assert experiments.get(experiment_id, role="viewer").status_code == 200
    assert experiments.list(role="viewer").status_code == 200
    assert experiments.estimate(body, role="viewer").status_code == 200
    assert experiments.patch(experiment_id, {"name": "x"}, role="editor").status_code == 200
    assert experiments.delete(experiment_id, role="admin").status_code == 204


def test_estimate_stores_nothing_and_grows_with_the_search(experiments: Experiments) -> None:
    def estimate(**optimizer: int) -> dict[str, Any]:
        settings = {"max_iterations": 2, "candidates_per_iteration": 2, "minibatch_size": 4, **optimizer}
        response = experiments.estimate(experiments.body(optimizer=settings), role="viewer")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert "experiment_id" not in response.get_json()
        result: dict[str, Any] = response.get_json()
        return result

    base = estimate()
    assert base["optimizer_calls"] == 4
    assert {t["step"] for t in base["terms"]} >= {
        "baseline",
        "screening rung 1",
        "validation",
        "test",
        "optimizer",
    }
    more_iterations, more_candidates = estimate(max_iterations=6), estimate(candidates_per_iteration=8)
    for bigger in (more_iterations, more_candidates):
        assert bigger["task_calls"] > base["task_calls"]
        assert bigger["optimizer_calls"] > base["optimizer_calls"]
        assert bigger["input_tokens"] > base["input_tokens"]
        assert bigger["output_tokens"] > base["output_tokens"]
    # Idempotency-Key is not an estimate's header, and nothing was written.
    keyed = experiments.api.call(
        "experiments_estimate", "POST", "/api/v1/experiments/estimate", tenant=experiments.tenant,
        role="viewer", json=experiments.body(), headers={"Idempotency-Key": "e-1"},
    )  # fmt: skip
    assert keyed.status_code == 200
    assert "Idempotent-Replayed" not in keyed.headers
    assert list(paths.experiments(experiments.tenant).list_documents()) == []
    assert list(tenant_collection(experiments.tenant, "idempotency").list_documents()) == []
