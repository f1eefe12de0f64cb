"""Evaluation jobs over a real ingested dataset version (one split), end to end on the emulators."""

from __future__ import annotations

from typing import Any

import pytest

from promptopt import clients, config
from promptopt.config import settings
from tests.integration.batch.conftest import Batch
from tests.integration.datasets.conftest import Ingest

pytestmark = pytest.mark.integration

CSV = "question,answer\n" + "".join(f"what is {i} plus {i}?,{2 * i}\n" for i in range(40))
PROMPT = {
    "system_prompt": "Think step by step and end with #### and the number.",
    "output_prompt": "Q: {question}",
}


@pytest.fixture
def ingest(emulator_env: dict[str, str]) -> Ingest:
    config.reset()
    bucket = clients.storage_client().bucket(settings().datasets_bucket)
    if not bucket.exists():
        bucket.create()
    return Ingest()


def dataset(batch: Batch, ingest: Ingest) -> str:
    body = {
        "name": "sums",
        "format": "csv",
        "mapping": {"inputs": ["question"], "reference": "answer"},
        "content": CSV,
    }
    created = batch.api.call(
        "datasets_create", "POST", "/api/v1/datasets", tenant=batch.tenant, role="editor", json=body
    ).get_json()
    assert ingest.deliver(created["version"]["source"].split("/", 3)[3]) == 200
    dataset_id: str = created["dataset"]["dataset_id"]
    return dataset_id


def test_an_evaluation_over_one_split_of_a_dataset_version(batch: Batch, ingest: Ingest) -> None:
    dataset_id = dataset(batch, ingest)
    body: dict[str, Any] = {
        **PROMPT,
        "dataset": {"dataset_id": dataset_id, "split": "test"},
        "metrics": [{"name": "numeric"}],
        "chunk_size": 3,
    }
    job = batch.started(body, path="/api/v1/inference/evaluate")
    assert job["source"] == {
        "type": "dataset",
        "dataset_id": dataset_id,
        "dataset_version": 1,
        "split": "test",
    }
    total = job["progress"]["total"]
    assert 0 < total < 40
    batch.run(job["job_id"])
    (message,) = batch.infra.pull("batch-completed", job["job_id"])
    assert batch.push(message).status_code == 200
    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    (numeric,) = done["evaluation"]["metrics"]
    assert (numeric["name"], numeric["mean"], numeric["n"]) == ("numeric", 1.0, total)
    results = batch.results(job["job_id"])
    assert {r["split"] for r in results} == {"test"}
    assert len({r["dataset_row"] for r in results}) == total
    first = results[0]
    assert first["output"].endswith(f"#### {first['reference']}")
    assert (
        first["inputs"]["question"]
        == f"what is {int(first['reference']) // 2} plus {int(first['reference']) // 2}?"
    )


def test_unknown_or_unready_datasets_are_refused(batch: Batch) -> None:
    response = batch.create({**PROMPT, "dataset": {"dataset_id": "ds_0123456789abcdef0123"}})
    assert response.status_code == 404, response.get_data(as_text=True)
    body = {
        "name": "later",
        "format": "csv",
        "mapping": {"inputs": ["question"], "reference": "answer"},
        "content": CSV,
    }
    pending = batch.api.call(
        "datasets_create", "POST", "/api/v1/datasets", tenant=batch.tenant, role="editor", json=body
    ).get_json()
    response = batch.create({**PROMPT, "dataset": {"dataset_id": pending["dataset"]["dataset_id"]}})
    assert response.status_code == 409, response.get_data(as_text=True)


def test_rows_of_a_dataset_deleted_mid_job_fail_instead_of_retrying_forever(
    batch: Batch, ingest: Ingest
) -> None:
    dataset_id = dataset(batch, ingest)
    job = batch.started({**PROMPT, "dataset": {"dataset_id": dataset_id, "split": "train"}, "chunk_size": 50})
    deleted = batch.api.call(
        "datasets_delete", "DELETE", f"/api/v1/datasets/{dataset_id}", tenant=batch.tenant, role="admin"
    )
    assert deleted.status_code in (200, 204), deleted.get_data(as_text=True)
    assert batch.run(job["job_id"]) == [200]
    done = batch.get(job["job_id"])
    assert done["status"] == "completed"
    assert done["progress"]["failed"] == done["progress"]["total"]
    assert {r["error"]["code"] for r in batch.results(job["job_id"])} == {"dataset_not_found"}


@pytest.mark.parametrize("path", ["/api/v1/inference/batch", "/api/v1/inference/evaluate"])
def test_a_template_variable_the_dataset_lacks_is_a_400_like_with_inline_rows(
    batch: Batch, ingest: Ingest, path: str
) -> None:
    dataset_id = dataset(batch, ingest)
    extra = {"metrics": [{"name": "numeric"}]} if path.endswith("evaluate") else {}
    body = {**PROMPT, "output_prompt": "Context: {context}\nQ: {question}", **extra}
    from_dataset = batch.create({**body, "dataset": {"dataset_id": dataset_id}}, path=path)
    assert from_dataset.status_code == 400, from_dataset.get_data(as_text=True)
    problem = from_dataset.get_json()
    assert problem["code"] == "missing_variables"
    assert problem["extra"]["missing"] == ["context"]
    assert "context" in problem["detail"]
    inline = batch.create({**body, "rows": [{"inputs": {"question": "q"}, "reference": "1"}]}, path=path)
    assert (inline.status_code, inline.get_json()["code"]) == (400, "missing_variables")
    # The variables the dataset has are accepted.
    assert (
        batch.create({**PROMPT, **extra, "dataset": {"dataset_id": dataset_id}}, path=path).status_code == 202
    )
