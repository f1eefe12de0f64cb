"""The tenant's monthly spending cap and experiment runs: a start whose estimate would pass the cap
is refused with 402, and a run in flight when the cap is reached stops as budget_exhausted with
what it already measured. The simulated models are priced here so their calls cost money."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from promptopt import config
from promptopt.llm import pricing
from promptopt.spend import caps

# The run tests' fixtures and driver, shared rather than copied.
from tests.integration.experiments.test_runs import Runs, run_infra, runs  # noqa: F401

pytestmark = pytest.mark.integration

PRICES = {
    "sim:default": {"input": 100.0, "output": 200.0},
    "sim:optimizer": {"input": 100.0, "output": 200.0},
}


@pytest.fixture(autouse=True)
def priced(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # noqa: F811 - the imported fixture
    monkeypatch.setenv("PROMPTOPT_PRICES", json.dumps(PRICES))
    config.reset()
    pricing.reset()
    caps.forget()
    yield
    config.reset()  # later tests read the default prices again (the table is cached)
    pricing.reset()
    caps.forget()


def _cap(runs: Runs, usd: float | None) -> None:  # noqa: F811
    response = runs.world.api.call(
        "spending_cap_set", "PUT", "/api/v1/spending-cap", tenant=runs.world.tenant,
        json={"monthly_cap_usd": usd},
    )  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)


def _spent(runs: Runs) -> float:  # noqa: F811
    response = runs.world.api.call(
        "spending_cap_get", "GET", "/api/v1/spending-cap", tenant=runs.world.tenant, role="viewer"
    )
    return float(response.get_json()["spent_usd"])


def test_a_start_whose_estimate_would_pass_the_cap_is_refused(runs: Runs) -> None:  # noqa: F811
    experiment = runs.experiment()
    estimate = float(experiment["estimate"]["cost_usd"])
    assert estimate > 0
    _cap(runs, estimate * 0.5)
    refused = runs.start(experiment["experiment_id"])
    assert refused.status_code == 402, refused.get_data(as_text=True)
    problem: dict[str, Any] = refused.get_json()
    assert problem["code"] == "spending_cap_exceeded"
    assert problem["extra"]["estimate_usd"] == pytest.approx(estimate)
    assert problem["extra"]["spent_usd"] == 0
    found = runs.world.api.call(
        "experiments_runs_list", "GET", f"/api/v1/experiments/{experiment['experiment_id']}/runs",
        tenant=runs.world.tenant, role="viewer",
    )  # fmt: skip
    assert found.get_json()["items"] == []  # nothing was created
    # A run whose own budget fits under the cap is admitted: the estimate is the budget when lower.
    small = runs.start(experiment["experiment_id"], json={"budget": {"max_cost_usd": estimate * 0.25}})
    assert small.status_code == 202, small.get_data(as_text=True)
    assert runs.cancel(experiment["experiment_id"], small.get_json()["run_id"]).status_code == 200


def _screening(runs: Runs, experiment_id: str, run_id: str) -> dict[str, Any]:  # noqa: F811
    """Deliver until the baseline is measured and the first candidates' jobs are out."""
    for _ in range(20):
        runs.pump.round()
        now = runs.run(experiment_id, run_id)
        if now["baseline"] is not None:
            return now
    raise AssertionError("the baseline was never measured")


def _baseline_rows_done(runs: Runs, experiment_id: str, run_id: str) -> dict[str, Any]:  # noqa: F811
    """Deliver the start step and the baseline jobs' rows, but not the messages that follow them
    (the chunks leave the next step to those messages)."""
    from promptopt.batch import runner

    runner.CARRY_ON = False  # put back by the test
    runs.pump.round()  # the start step dispatches the baseline jobs
    assert runs.pump.tasks() > 0
    return runs.run(experiment_id, run_id)


@pytest.mark.parametrize(
    ("reach", "where"),
    [(_screening, "during its screen step"), (_baseline_rows_done, "spent this month of a")],
    ids=["inside_a_job", "between_steps"],
)
def test_a_run_in_flight_stops_at_the_cap_keeping_its_results(
    runs: Runs,  # noqa: F811
    reach: Any,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reached inside a job (its next chunk stops it) or between steps (the next dispatch is refused)."""
    from promptopt.batch import runner

    monkeypatch.setattr(runner, "CARRY_ON", True)  # put back after the test, whatever `reach` sets
    experiment = runs.experiment()
    run = runs.started(experiment["experiment_id"])
    now = reach(runs, experiment["experiment_id"], run["run_id"])
    assert now["status"] == "running", now
    spent = _spent(runs)
    assert spent > 0
    _cap(runs, spent * 0.5)  # the month's spend is already past it
    caps.forget()  # what IN_FLIGHT_CHECK_S (10 s) does on every instance
    runs.pump.settle()
    final = runs.run(experiment["experiment_id"], run["run_id"])
    assert final["status"] == "budget_exhausted", final
    assert final["reason"].startswith("spending_cap: "), final["reason"]
    assert where in final["reason"], final["reason"]
    assert final["baseline"] is not None  # what was measured is kept
    if now["baseline"] is not None:
        assert final["baseline"] == now["baseline"]
    assert final["usage"]["cost_usd"] >= now["usage"]["cost_usd"]
    # No new work is dispatched past the cap: the spend grew by at most what was in flight.
    assert _spent(runs) == pytest.approx(final["usage"]["cost_usd"])
    experiment_now = runs.world.api.call(
        "experiments_get", "GET", f"/api/v1/experiments/{experiment['experiment_id']}",
        tenant=runs.world.tenant, role="viewer",
    ).get_json()  # fmt: skip
    assert experiment_now["active_run_id"] is None
