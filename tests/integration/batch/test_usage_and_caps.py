"""Usage reports add up to the jobs' own figures; the monthly spending cap refuses new work and
stops work in flight, keeping what was paid for. The simulator is priced here so calls cost money."""

from __future__ import annotations

import json
from typing import Any

import pytest

from promptopt import config
from promptopt.llm import pricing
from promptopt.spend import caps
from tests.conftest import Api
from tests.integration.batch.conftest import Batch
from tests.support import new_tenant

pytestmark = pytest.mark.integration

PRICES = {"sim:default": {"input": 1000.0, "output": 2000.0}}  # dear, so a few rows cost dollars


@pytest.fixture(autouse=True)
def priced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_PRICES", json.dumps(PRICES))
    config.reset()
    pricing.reset()
    caps.forget()


def _rows(n: int, *, repeat: int = 1) -> list[dict[str, Any]]:
    return [{"inputs": {"input": f"what is {i // repeat} plus one"}, "reference": str(i)} for i in range(n)]


def _usage(api: Api, tenant: str) -> dict[str, Any]:
    r = api.call("usage_get", "GET", "/api/v1/usage", tenant=tenant, role="viewer")
    assert r.status_code == 200, r.get_data(as_text=True)
    return dict(r.get_json())


def _cap(api: Api, tenant: str, usd: float | None) -> Any:
    return api.call(
        "spending_cap_set", "PUT", "/api/v1/spending-cap", tenant=tenant, json={"monthly_cap_usd": usd}
    )


def test_usage_sums_equal_the_jobs_own_figures(api: Api, batch: Batch) -> None:
    first = batch.started({"output_prompt": "{input}", "rows": _rows(12, repeat=3), "chunk_size": 5})
    second = batch.started({"output_prompt": "Q: {input}", "rows": _rows(7)})
    for job in (first, second):
        batch.run(job["job_id"])
    sync = api.call(
        "inference_complete", "POST", "/api/v1/inference/complete", tenant=batch.tenant, role="editor",
        json={"output_prompt": "{input}", "user_input": "hello there"},
    )  # fmt: skip
    assert sync.status_code == 200, sync.get_data(as_text=True)
    jobs = [batch.get(j["job_id"]) for j in (first, second)]
    assert all(j["status"] == "completed" for j in jobs)
    report = _usage(api, batch.tenant)

    by_source = {s["id"]: s for s in report["by_source"]}
    for job in jobs:
        mine = by_source[job["job_id"]]
        assert mine["kind"] == "job"
        assert mine["calls"] == job["usage"]["calls"]
        assert mine["cache_hits"] == job["progress"]["cache_hits"]
        assert mine["input_tokens"] == job["usage"]["input_tokens"]
        assert mine["output_tokens"] == job["usage"]["output_tokens"]
        assert mine["cost_usd"] == pytest.approx(job["usage"]["cost_usd"])
    assert jobs[0]["progress"]["cache_hits"] > 0  # repeated rows answered from the cache: not calls
    sync_cost = sync.get_json()["cost_usd"]
    assert by_source["sync"]["calls"] == 1
    assert by_source["sync"]["cost_usd"] == pytest.approx(sync_cost)
    totals = report["totals"]
    assert totals["calls"] == sum(j["usage"]["calls"] for j in jobs) + 1
    assert totals["cost_usd"] == pytest.approx(sum(j["usage"]["cost_usd"] for j in jobs) + sync_cost)
    assert totals["cache_hits"] == sum(j["progress"]["cache_hits"] for j in jobs)
    for view in ("by_day", "by_model"):
        assert sum(e["calls"] for e in report[view]) == totals["calls"]
        assert sum(e["cost_usd"] for e in report[view]) == pytest.approx(totals["cost_usd"])
    assert [m["model"] for m in report["by_model"]] == ["sim:default"]
    # The ledger the cap reads holds the same money.
    spent = api.call("spending_cap_get", "GET", "/api/v1/spending-cap", tenant=batch.tenant, role="viewer")
    assert spent.get_json()["spent_usd"] == pytest.approx(totals["cost_usd"])
    assert spent.get_json()["monthly_cap_usd"] is None


def test_running_jobs_count_what_their_chunks_have_done_so_far(api: Api, batch: Batch) -> None:
    done = batch.started({"output_prompt": "{input}", "rows": _rows(3)})
    batch.run(done["job_id"])
    running = [
        batch.started({"output_prompt": f"{n}: {{input}}", "rows": _rows(9), "chunk_size": 4}) for n in (1, 2)
    ]
    assert batch.run(running[0]["job_id"], tasks=batch.infra.tasks(running[0]["job_id"])[:1]) == [200]
    assert batch.run(running[1]["job_id"], tasks=batch.infra.tasks(running[1]["job_id"])[:2]) == [200, 200]
    by_source = {s["id"]: s for s in _usage(api, batch.tenant)["by_source"]}
    for job in (done, *running):
        shown = batch.get(job["job_id"])
        assert by_source[job["job_id"]]["calls"] == shown["usage"]["calls"], shown["status"]
    assert [by_source[j["job_id"]]["calls"] for j in running] == [4, 8]


def test_the_cap_refuses_new_work_with_402(api: Api, batch: Batch) -> None:
    job = batch.started({"output_prompt": "{input}", "rows": _rows(4)})
    batch.run(job["job_id"])
    spent = batch.get(job["job_id"])["usage"]["cost_usd"]
    assert spent > 0
    assert _cap(api, batch.tenant, spent * 1.01).status_code == 200
    refused = batch.create({"output_prompt": "{input}", "rows": _rows(4)})
    assert refused.status_code == 402
    problem = refused.get_json()
    assert problem["code"] == "spending_cap_exceeded"
    assert problem["extra"]["spent_usd"] == pytest.approx(spent)
    call = api.call(
        "inference_complete", "POST", "/api/v1/inference/complete", tenant=batch.tenant, role="editor",
        json={"output_prompt": "{input}", "user_input": "hi"},
    )  # fmt: skip
    assert (call.status_code, call.get_json()["code"]) == (402, "spending_cap_exceeded")
    # A budget small enough to fit is admitted: the estimate is the job's own budget when lower.
    small = {"output_prompt": "{input}", "rows": _rows(4), "budget": {"max_cost_usd": spent * 0.005}}
    assert batch.create(small).status_code == 202
    # Raising the cap lets work in again; only admins may set it.
    assert _cap(api, batch.tenant, spent * 100).status_code == 200
    assert batch.create({"output_prompt": "{input}", "rows": _rows(4)}).status_code == 202
    editor = api.call(
        "spending_cap_set", "PUT", "/api/v1/spending-cap", tenant=batch.tenant, role="editor",
        json={"monthly_cap_usd": 1.0},
    )  # fmt: skip
    assert editor.status_code == 403


def test_reaching_the_cap_stops_work_in_flight_keeping_its_results(api: Api, batch: Batch) -> None:
    job = batch.started({"output_prompt": "{input}", "rows": _rows(12), "chunk_size": 4})
    tasks = batch.infra.tasks(job["job_id"])
    assert len(tasks) == 3
    assert _cap(api, batch.tenant, 1e-9).status_code == 200  # set after admission: work is in flight
    batch.run(job["job_id"], tasks=tasks[:1])  # the first chunk runs (nothing was spent yet)
    caps.forget()  # what IN_FLIGHT_CHECK_S (10 s) does on every instance
    batch.run(job["job_id"], tasks=tasks[1:])
    done = batch.get(job["job_id"])
    assert done["status"] == "budget_exhausted"
    assert done["stop_reason"] == "budget:spending_cap"
    assert done["progress"]["succeeded"] == 4  # what was paid for is kept
    assert len([r for r in batch.results(job["job_id"]) if r["status"] == "succeeded"]) == 4


def test_optimizer_calls_count_under_each_experiment_in_range_and_tenant(api: Api, batch: Batch) -> None:
    """Runs' optimizer usage is read in one query across the tenant's experiments (as the runs
    recorded it): each under its own experiment and optimizer model, on the day the run started;
    runs outside the range, runs without optimizer calls and another tenant's runs add nothing."""
    from datetime import UTC, datetime, timedelta

    from promptopt.experiments import paths as experiment_paths

    now = datetime.now(UTC)
    other = new_tenant()

    def run(tenant: str, experiment_id: str, run_id: str, at: datetime, calls: int, cost: float) -> None:
        experiment = experiment_paths.experiment_ref(tenant, experiment_id)
        experiment.set({"experiment_id": experiment_id, "name": experiment_id})
        experiment.collection("runs").document(run_id).set(
            {
                "run_id": run_id,
                "experiment_id": experiment_id,
                "tenant": tenant,
                "created_at": at,
                "config": {"optimizer_model": "sim:optimizer", "plan": "x" * 1000},
                "usage": {
                    "optimizer_calls": calls,
                    "optimizer_input_tokens": 10 * calls,
                    "optimizer_output_tokens": 2 * calls,
                    "optimizer_cost_usd": cost,
                },
            }
        )

    run(batch.tenant, "ex_a", "run_1", now, 3, 0.5)
    run(batch.tenant, "ex_a", "run_2", now, 2, 0.25)
    run(batch.tenant, "ex_b", "run_3", now, 4, 1.0)
    run(batch.tenant, "ex_b", "run_4", now, 0, 0.0)  # counted as a run, adds no calls
    run(batch.tenant, "ex_c", "run_5", now - timedelta(days=400), 7, 9.0)  # before the range
    run(other, "ex_a", "run_6", now, 5, 2.0)  # another tenant's run of an experiment of the same id
    report = _usage(api, batch.tenant)
    by_source = {(s["kind"], s["id"]): s for s in report["by_source"]}
    assert set(by_source) == {("experiment", "ex_a"), ("experiment", "ex_b")}
    a, b = by_source[("experiment", "ex_a")], by_source[("experiment", "ex_b")]
    assert (a["calls"], a["input_tokens"], a["output_tokens"], a["runs"]) == (5, 50, 10, 2)
    assert a["cost_usd"] == pytest.approx(0.75)
    assert (b["calls"], b["runs"], b["jobs"]) == (4, 2, 0)
    assert report["totals"]["calls"] == 9
    assert [m["model"] for m in report["by_model"]] == ["sim:optimizer"]
    assert [d["date"] for d in report["by_day"]] == [now.date().isoformat()]
    assert _usage(api, other)["totals"]["calls"] == 5
