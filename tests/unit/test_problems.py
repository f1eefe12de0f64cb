"""Problem documents are built as plain dicts; they must be exactly what the Problem model publishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from promptopt.errors import Conflict, InvalidRequest
from promptopt.http.answer_models import Problem
from promptopt.http.problems import from_api_error, from_validation, problem_body, problem_response
from tests.support import ROOT


def _as_model(problem: dict[str, Any]) -> dict[str, Any]:
    return Problem.model_validate(problem).model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize(
    "problem",
    [
        problem_body(status=500, code="internal", title="Internal error", detail="x"),
        problem_body(status=503, code="busy", title="Unavailable", detail="retry", instance="/api/v1/x" * 50),
        from_api_error(
            Conflict("taken", code="label_taken", current_etag="v3", retry_after_s=2, note="y" * 200),
            "/api/v1/prompts/p",
        ),
    ],
)
def test_problem_dicts_match_the_model(problem: dict[str, Any]) -> None:
    assert problem == _as_model(problem)
    assert set(problem) <= set(Problem.model_fields)
    assert json.loads(problem_response(problem).get_data()) == problem


def test_validation_problems_match_the_model() -> None:
    class Body(BaseModel):
        n: int = Field(ge=1)
        name: str

    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"n": 0})
    error = from_validation(caught.value, "body")
    assert isinstance(error, InvalidRequest)
    problem = from_api_error(error, "/api/v1/x")
    assert problem == _as_model(problem)
    assert [e["loc"] for e in problem["errors"]] == ["body.n", "body.name"]


def test_extra_members_serialize_as_pydantic_would() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    problem = problem_body(
        status=409, code="c", title="t", detail="d", since=at, at_hour=at.replace(microsecond=0)
    )
    body = json.loads(problem_response(problem).get_data())
    assert body == Problem.model_validate(problem).model_dump(mode="json", exclude_none=True)


def test_the_http_layer_imports_no_pydantic() -> None:
    modules = "promptopt.http, promptopt.access.keys, promptopt.access.audit, promptopt.access.members, "
    modules += "promptopt.spend.caps, promptopt.prompts.service, promptopt.prompts.lifecycle, "
    modules += "promptopt.datasets.catalog, promptopt.access.exchange, promptopt.experiments.start"
    code = f"import sys, {modules}; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Functions whose module loads no pydantic: reads answered as dict views and writes that read a
# plainly valid body themselves (a new import of a model module at the top of one fails here).
WITHOUT_PYDANTIC = (
    "api_keys_create",
    "api_keys_list",
    "api_keys_revoke",
    "audit_list",
    "auth_token",
    "batch_cancel",
    "batch_get",
    "batch_list",
    "batch_results",
    "batch_scores",
    "datasets_delete",
    "datasets_get",
    "datasets_list",
    "datasets_rows",
    "datasets_sample",
    "experiments_delete",
    "experiments_get",
    "experiments_list",
    "experiments_metrics",
    "experiments_run_cancel",
    "experiments_run_get",
    "experiments_runs_list",
    "experiments_start",
    "health_ready",
    "members_list",
    "members_remove",
    "members_set",
    "prompts_archive",
    "prompts_delete",
    "prompts_get",
    "prompts_label_delete",
    "prompts_label_set",
    "prompts_list",
    "prompts_unarchive",
    "prompts_versions",
    "spending_cap_get",
    "usage_get",
)


@pytest.mark.parametrize("name", WITHOUT_PYDANTIC)
def test_the_function_loads_no_pydantic(name: str) -> None:
    folder = ROOT / "functions" / name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(folder), str(ROOT / "shared")))}
    code = "import sys, main; print('pydantic' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=folder
    )
    assert out.stdout.strip() == "False"
