"""The /api/v1/experiments endpoints, over the CLI's ApiClient (its retries, token and errors)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from promptopt.cli.client import ApiClient, ApiResponse

ROOT = "/experiments"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class ExperimentApi:
    """The experiment endpoints; creates and starts send one Idempotency-Key across retries."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def create(self, body: dict[str, Any], *, idempotency_key: str) -> ApiResponse:
        """POST /experiments: 201 with the experiment and its estimate."""
        return self._api.request("POST", ROOT, json=body, headers={"Idempotency-Key": idempotency_key})

    def estimate(self, body: dict[str, Any]) -> ApiResponse:
        """POST /experiments/estimate: upper bounds of one run; stores nothing."""
        return self._api.request("POST", f"{ROOT}/estimate", json=body)

    def list(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ApiResponse:
        """GET /experiments: one page, newest first."""
        params = _clean({"name": name, "status": status, "page_size": page_size, "page_token": page_token})
        return self._api.request("GET", ROOT, params=params)

    def get(self, experiment_id: str) -> ApiResponse:
        """GET /experiments/{id}."""
        return self._api.request("GET", f"{ROOT}/{_segment(experiment_id)}")

    def start(self, experiment_id: str, body: dict[str, Any], *, idempotency_key: str) -> ApiResponse:
        """POST /experiments/{id}/start: 202 with the run (the same run for a replayed key)."""
        headers = {"Idempotency-Key": idempotency_key}
        return self._api.request(
            "POST", f"{ROOT}/{_segment(experiment_id)}/start", json=body, headers=headers
        )

    def run(self, experiment_id: str, run_id: str) -> ApiResponse:
        """GET /experiments/{id}/runs/{run_id}: status, step, progress, usage, scores, events."""
        return self._api.request("GET", f"{ROOT}/{_segment(experiment_id)}/runs/{_segment(run_id)}")

    def runs(
        self, experiment_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> ApiResponse:
        """GET /experiments/{id}/runs: one page, newest first."""
        params = _clean({"page_size": page_size, "page_token": page_token})
        return self._api.request("GET", f"{ROOT}/{_segment(experiment_id)}/runs", params=params)

    def metrics(self, experiment_id: str, *, run_id: str | None = None) -> ApiResponse:
        """GET /experiments/{id}/metrics: the latest (or the named) run, iteration by iteration."""
        params = _clean({"run_id": run_id})
        return self._api.request("GET", f"{ROOT}/{_segment(experiment_id)}/metrics", params=params)

    def cancel(self, experiment_id: str, run_id: str) -> ApiResponse:
        """POST /experiments/{id}/runs/{run_id}/cancel (cancelling twice answers the run again)."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        path = f"{ROOT}/{_segment(experiment_id)}/runs/{_segment(run_id)}/cancel"
        return self._api.request("POST", path, headers=headers)

    def prompt(self, prompt_id: str, version: int) -> ApiResponse:
        """GET /prompts/{id}?version=N: one version of a prompt (for the diff)."""
        return self._api.get_prompt(prompt_id, version=version)
