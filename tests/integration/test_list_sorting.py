"""Datasets and experiments listings sorted by created, updated or name, across pages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.integration.experiments.conftest import Experiments, experiments, ingest  # noqa: F401

pytestmark = pytest.mark.integration


def pages(api: Api, tenant: str, function: str, path: str, field: str, **query: Any) -> list[Any]:
    """Every item's `field`, following next_page_token with pages of two."""
    seen: list[Any] = []
    token = None
    while True:
        q = {**query, "page_size": 2, **({"page_token": token} if token else {})}
        r = api.call(function, "GET", path, tenant=tenant, role="viewer", query_string=q)
        assert r.status_code == 200, r.get_data(as_text=True)
        seen += [item[field] for item in r.get_json()["items"]]
        token = r.get_json()["next_page_token"]
        if not token:
            return seen


def test_datasets_and_experiments_sort_both_ways(api: Api, experiments: Experiments) -> None:  # noqa: F811
    tenant = experiments.tenant
    for name in ("z-set", "a-set"):
        experiments.dataset(ready=False, name=name)
    d = ("datasets_list", "/api/v1/datasets", "name")
    made = ["bbh/boolean_expressions", "z-set", "a-set"]
    assert pages(api, tenant, *d, sort="name") == sorted(made)
    assert pages(api, tenant, *d, sort="-name") == sorted(made, reverse=True)
    assert pages(api, tenant, *d, sort="created") == made
    assert pages(api, tenant, *d) == made[::-1]  # newest first by default

    names = ["Zulu", "alpha", "Mike"]
    for name in names:
        experiments.created(name=name)
    e = ("experiments_list", "/api/v1/experiments", "name")
    assert pages(api, tenant, *e, sort="name") == ["alpha", "Mike", "Zulu"]  # regardless of case
    assert pages(api, tenant, *e, sort="-name") == ["Zulu", "Mike", "alpha"]
    assert pages(api, tenant, *e, sort="created") == names
    assert pages(api, tenant, *e, sort="-updated") == names[::-1]

    first = experiments.list(sort="name", page_size=1).get_json()
    stale = experiments.list(sort="-name", page_size=1, page_token=first["next_page_token"])
    assert (stale.status_code, stale.get_json()["code"]) == (400, "invalid_page_token")
    assert experiments.list(sort="size").status_code == 400
