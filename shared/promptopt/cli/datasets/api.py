"""The /api/v1/datasets endpoints, over the CLI's ApiClient (its retries, token and errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from promptopt.cli.client import ApiClient, ApiResponse


def _segment(value: str) -> str:
    return quote(value, safe="")


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class DatasetApi:
    """The /api/v1/datasets endpoints, over the CLI's ApiClient (its retries, token and errors)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def create(self, body: dict[str, Any], *, idempotency_key: str) -> ApiResponse:
        """POST /datasets: the dataset and its version 1; one key across retries."""
        headers = {"Idempotency-Key": idempotency_key}
        return self._api.request("POST", "/datasets", json=body, headers=headers)

    def create_version(self, dataset_id: str, body: dict[str, Any], *, idempotency_key: str) -> ApiResponse:
        """POST /datasets/{id}/versions: a new version of an existing dataset."""
        headers = {"Idempotency-Key": idempotency_key}
        path = f"/datasets/{_segment(dataset_id)}/versions"
        return self._api.request("POST", path, json=body, headers=headers)

    def get(self, dataset_id: str, *, versions: int | None = None) -> ApiResponse:
        """GET /datasets/{id}: the dataset with its newest versions."""
        params = _clean({"versions": versions})
        return self._api.request("GET", f"/datasets/{_segment(dataset_id)}", params=params)

    def list(
        self, *, name: str | None = None, page_size: int | None = None, page_token: str | None = None
    ) -> ApiResponse:
        """GET /datasets: one page, newest first."""
        params = _clean({"name": name, "page_size": page_size, "page_token": page_token})
        return self._api.request("GET", "/datasets", params=params)

    def sample(self, dataset_id: str, **query: Any) -> ApiResponse:
        """GET /datasets/{id}/sample (n, split, seed, version)."""
        return self._api.request("GET", f"/datasets/{_segment(dataset_id)}/sample", params=_clean(query))

    def rows(self, dataset_id: str, **query: Any) -> ApiResponse:
        """GET /datasets/{id}/rows (split, version, page_size, page_token)."""
        return self._api.request("GET", f"/datasets/{_segment(dataset_id)}/rows", params=_clean(query))

    def delete(self, dataset_id: str) -> ApiResponse:
        """DELETE /datasets/{id} (admin)."""
        return self._api.request("DELETE", f"/datasets/{_segment(dataset_id)}")
