"""`sweep_stuck` for dataset versions: a lost finalized event or a dead delivery never leaves a
version pending or processing forever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from promptopt.datasets import ingest as ingest_module
from promptopt.datasets import records, sweeper
from tests.conftest import Api
from tests.integration.datasets.conftest import Ingest
from tests.integration.datasets.test_datasets_flow import MAPPING, create, get

pytestmark = pytest.mark.integration

LATER = timedelta(days=1)  # past any lease and any upload URL's expiry


def sweep(tenant: str, **kw: Any) -> sweeper.SweepReport:
    return sweeper.sweep_stuck(now=datetime.now(UTC) + LATER, tenant=tenant, **kw)


def test_a_lost_finalized_event_is_ingested_by_the_sweep(api: Api, tenant: str, ingest: Ingest) -> None:
    created = create(api, tenant)  # the inline file is stored; its event never arrives
    dataset_id = created["dataset"]["dataset_id"]
    assert get(api, tenant, dataset_id)["versions"][0]["status"] == "pending"
    report = sweep(tenant)
    assert report.redriven == [f"{dataset_id}/v1"]
    assert get(api, tenant, dataset_id)["versions"][0]["status"] == "ready"


def test_an_upload_url_never_used_fails_the_version(api: Api, tenant: str, ingest: Ingest) -> None:
    body = {"name": "never", "format": "csv", "mapping": MAPPING}
    response = api.call(
        "datasets_create", "POST", "/api/v1/datasets", tenant=tenant, role="editor", json=body
    )
    assert response.status_code == 201, response.get_json()
    dataset_id = response.get_json()["dataset"]["dataset_id"]
    assert sweeper.sweep_stuck(tenant=tenant).failed == []  # the URL is still valid
    assert sweep(tenant).failed == [f"{dataset_id}/v1"]
    version = get(api, tenant, dataset_id)["versions"][0]
    assert (version["status"], version["failure"]["code"]) == ("failed", "upload_missing")


def test_a_processing_version_whose_delivery_died_is_ingested_again(
    api: Api, tenant: str, ingest: Ingest
) -> None:
    created = create(api, tenant)
    dataset_id = created["dataset"]["dataset_id"]
    name = created["version"]["source"].split("/", 3)[3]
    blob = ingest.bucket.get_blob(name)
    ref = records.version_ref(tenant, dataset_id, 1)
    past = datetime.now(UTC) - timedelta(hours=2)  # a delivery took it, then died; no retry came
    ref.update(
        {"status": "processing", "generation": str(blob.generation), "lease_until": past, "attempt": 1}
    )
    assert sweep(tenant).redriven == [f"{dataset_id}/v1"]
    assert get(api, tenant, dataset_id)["versions"][0]["status"] == "ready"


def test_a_version_that_never_ingests_fails_after_max_tries(
    api: Api, tenant: str, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(obj: Any) -> str:
        raise ConnectionError("storage unreachable")

    monkeypatch.setattr(ingest_module, "handle_finalized", broken)
    dataset_id = create(api, tenant)["dataset"]["dataset_id"]
    for _ in range(2):
        assert sweep(tenant, max_tries=2).failed == []
    assert sweep(tenant, max_tries=2).failed == [f"{dataset_id}/v1"]
    version = get(api, tenant, dataset_id)["versions"][0]
    assert (version["status"], version["failure"]["code"]) == ("failed", "ingest_stuck")
