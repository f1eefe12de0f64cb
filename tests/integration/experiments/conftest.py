"""Experiments on the emulators: a tenant with a ready dataset (a bundled BBH task) and a prompt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promptopt import clients, config
from promptopt.cli.datasets.bundled import bundled
from promptopt.config import settings
from tests.conftest import Api
from tests.integration.datasets.conftest import Ingest

TASK = "bbh/boolean_expressions"
PROMPT = {"system_prompt": "Evaluate the Boolean expression.", "output_prompt": "{input}\nAnswer:"}
ROOT = "/api/v1/experiments"


@dataclass
class Experiments:
    """Calls the experiment endpoints (and makes datasets and prompts) as one tenant."""

    api: Api
    ingest: Ingest
    tenant: str
    dataset_id: str = ""
    prompt_id: str = ""

    def dataset(self, *, ready: bool = True, **overrides: Any) -> str:
        """A dataset of the bundled task; ingested (ready) unless `ready` is False."""
        entry = bundled(TASK)
        body = {
            "name": TASK,
            "format": entry["format"],
            "mapping": entry["mapping"],
            "content": Path(entry["path"]).read_text(encoding="utf-8"),
            **overrides,
        }
        response = self.api.call(
            "datasets_create", "POST", "/api/v1/datasets", tenant=self.tenant, role="editor", json=body
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        created = response.get_json()
        if ready:
            assert self.ingest.deliver(created["version"]["source"].split("/", 3)[3]) == 200
        dataset_id: str = created["dataset"]["dataset_id"]
        return dataset_id

    def prompt(self, **overrides: Any) -> str:
        response = self.api.call(
            "prompts_create", "POST", "/api/v1/prompts", tenant=self.tenant, role="editor",
            json={**PROMPT, **overrides},
        )  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
        prompt_id: str = response.get_json()["prompt_id"]
        return prompt_id

    def body(self, **overrides: Any) -> dict[str, Any]:
        """A valid create body (small settings), with top-level fields replaced."""
        return {
            "name": "boolean expressions",
            "prompt": {"prompt_id": self.prompt_id},
            "dataset": {"dataset_id": self.dataset_id},
            "metric": {"name": "exact_match"},
            "optimizer": {"max_iterations": 2, "candidates_per_iteration": 4, "minibatch_size": 4},
            **overrides,
        }

    def create(
        self, body: dict[str, Any], *, role: str = "editor", tenant: str | None = None, **kw: Any
    ) -> Any:
        return self.api.call(
            "experiments_create", "POST", ROOT, tenant=tenant or self.tenant, role=role, json=body, **kw
        )

    def created(self, **overrides: Any) -> dict[str, Any]:
        response = self.create(self.body(**overrides))
        assert response.status_code == 201, response.get_data(as_text=True)
        experiment: dict[str, Any] = response.get_json()
        return experiment

    def estimate(self, body: dict[str, Any], *, role: str = "viewer", tenant: str | None = None) -> Any:
        return self.api.call(
            "experiments_estimate", "POST", f"{ROOT}/estimate", tenant=tenant or self.tenant, role=role,
            json=body,
        )  # fmt: skip

    def get(self, experiment_id: str, *, role: str = "viewer", tenant: str | None = None) -> Any:
        return self.api.call(
            "experiments_get", "GET", f"{ROOT}/{experiment_id}", tenant=tenant or self.tenant, role=role
        )

    def list(self, *, role: str = "viewer", tenant: str | None = None, **query: Any) -> Any:
        return self.api.call(
            "experiments_list", "GET", ROOT, tenant=tenant or self.tenant, role=role, query_string=query
        )

    def patch(
        self, experiment_id: str, body: dict[str, Any], *, role: str = "editor", tenant: str | None = None
    ) -> Any:
        return self.api.call(
            "experiments_update", "PATCH", f"{ROOT}/{experiment_id}", tenant=tenant or self.tenant,
            role=role, json=body,
        )  # fmt: skip

    def delete(self, experiment_id: str, *, role: str = "admin", tenant: str | None = None) -> Any:
        return self.api.call(
            "experiments_delete", "DELETE", f"{ROOT}/{experiment_id}", tenant=tenant or self.tenant, role=role
        )


@pytest.fixture(scope="session")
def ingest(emulator_env: dict[str, str]) -> Ingest:
    config.reset()
    bucket = clients.storage_client().bucket(settings().datasets_bucket)
    if not bucket.exists():
        bucket.create()
    return Ingest()


@pytest.fixture
def experiments(api: Api, ingest: Ingest, tenant: str, monkeypatch: pytest.MonkeyPatch) -> Experiments:
    """A fresh tenant holding a ready dataset of the bundled task and a prompt over its `input`."""
    monkeypatch.delenv("PROMPTOPT_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("PROMPTOPT_PRICES", raising=False)
    config.reset()
    world = Experiments(api=api, ingest=ingest, tenant=tenant)
    world.dataset_id = world.dataset()
    world.prompt_id = world.prompt()
    return world
