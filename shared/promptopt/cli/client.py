"""The CLI's view of the one HTTP client (`promptopt.client.http`): raw JSON answers, same core.

`ApiClient` is `promptopt.client.http.HttpClient` (credentials, retries, Idempotency-Key reuse,
typed problem errors) plus the endpoint helpers the CLI's commands call; `ApiResponse`,
`ApiError` and `TransportError` are the client's own classes, so the CLI and `promptopt.Client`
raise and report the same errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from promptopt.client.errors import ApiError, TransportError
from promptopt.client.http import (
    API_PREFIX,
    IDEMPOTENCY_IN_PROGRESS,
    MAX_RETRY_AFTER_S,
    RETRY_STATUSES,
    ApiResponse,
    HttpClient,
    clean,
    segment,
)

__all__ = [
    "API_PREFIX",
    "IDEMPOTENCY_IN_PROGRESS",
    "MAX_RETRY_AFTER_S",
    "RETRY_STATUSES",
    "ApiClient",
    "ApiError",
    "ApiResponse",
    "TransportError",
]


class ApiClient(HttpClient):
    """Calls the promptopt API at `base_url`; every method returns the raw `ApiResponse`."""

    def __init__(self, base_url: str, *, user_agent: str = "promptopt-cli", **kw: Any) -> None:
        super().__init__(base_url, user_agent=user_agent, **kw)

    def __enter__(self) -> ApiClient:
        return self

    def health(self) -> ApiResponse:
        """GET /api/v1/health (public)."""
        return self.request("GET", "/health")

    def exchange_api_key(self, api_key: str) -> ApiResponse:
        """POST /api/v1/auth/token (public): a short-lived token for an API key."""
        return self.request("POST", "/auth/token", json={"api_key": api_key}, authenticate=False)

    def me(self) -> ApiResponse:
        """GET /api/v1/me: who the API takes the caller to be."""
        return self.request("GET", "/me")

    def create_api_key(self, body: Mapping[str, Any]) -> ApiResponse:
        """POST /api/v1/api-keys (admin): the answer holds the secret, once."""
        return self.request("POST", "/api-keys", json=dict(body))

    def list_api_keys(self) -> ApiResponse:
        """GET /api/v1/api-keys (admin)."""
        return self.request("GET", "/api-keys")

    def revoke_api_key(self, key_id: str) -> ApiResponse:
        """DELETE /api/v1/api-keys/{key_id} (admin)."""
        return self.request("DELETE", f"/api-keys/{segment(key_id)}")

    def create_prompt(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> ApiResponse:
        """POST /api/v1/prompts with an Idempotency-Key (a fresh random one unless given)."""
        return self.post("/prompts", dict(body), idempotency_key=idempotency_key)

    def get_prompt(
        self, prompt_id: str, *, version: int | None = None, label: str | None = None
    ) -> ApiResponse:
        """GET /api/v1/prompts/{id}: the latest version, or one by number or label."""
        return self.request(
            "GET", f"/prompts/{segment(prompt_id)}", params=clean({"version": version, "label": label})
        )

    def update_prompt(self, prompt_id: str, body: Mapping[str, Any], *, if_match: str) -> ApiResponse:
        """PUT /api/v1/prompts/{id}: the next version, based on the version `if_match` names."""
        return self.request(
            "PUT", f"/prompts/{segment(prompt_id)}", json=dict(body), headers={"If-Match": if_match}
        )

    def patch_prompt(self, prompt_id: str, body: Mapping[str, Any], *, if_match: str) -> ApiResponse:
        """PATCH /api/v1/prompts/{id}: rename, describe or tag the prompt (no new version)."""
        return self.request(
            "PATCH", f"/prompts/{segment(prompt_id)}", json=dict(body), headers={"If-Match": if_match}
        )

    def archive_prompt(self, prompt_id: str, *, undo: bool = False) -> ApiResponse:
        """POST /api/v1/prompts/{id}/archive (or /unarchive)."""
        verb = "unarchive" if undo else "archive"
        return self.post(f"/prompts/{segment(prompt_id)}/{verb}", None, idempotency_key=str(uuid.uuid4()))

    def delete_prompt(self, prompt_id: str) -> ApiResponse:
        """DELETE /api/v1/prompts/{id}: the prompt with all its versions."""
        return self.request("DELETE", f"/prompts/{segment(prompt_id)}")

    def list_prompts(
        self,
        *,
        name: str | None = None,
        label: str | None = None,
        sort: str | None = None,
        include_archived: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ApiResponse:
        """GET /api/v1/prompts: one page of prompts, newest first unless `sort` says otherwise."""
        params = clean(
            {
                "name": name,
                "label": label,
                "sort": sort,
                "include_archived": "true" if include_archived else None,
                "page_size": page_size,
                "page_token": page_token,
            }
        )
        return self.request("GET", "/prompts", params=params)

    def list_versions(
        self, prompt_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> ApiResponse:
        """GET /api/v1/prompts/{id}/versions: one page of versions, newest first, with the labels."""
        params = clean({"page_size": page_size, "page_token": page_token})
        return self.request("GET", f"/prompts/{segment(prompt_id)}/versions", params=params)

    def set_label(self, prompt_id: str, label: str, version: int) -> ApiResponse:
        """PUT /api/v1/prompts/{id}/labels/{label}: point the label at a version."""
        path = f"/prompts/{segment(prompt_id)}/labels/{segment(label)}"
        return self.request("PUT", path, json={"version": version})

    def remove_label(self, prompt_id: str, label: str) -> ApiResponse:
        """DELETE /api/v1/prompts/{id}/labels/{label}."""
        return self.request("DELETE", f"/prompts/{segment(prompt_id)}/labels/{segment(label)}")

    def evaluate(self, body: Mapping[str, Any]) -> ApiResponse:
        """POST /api/v1/evaluate: score predictions against references (nothing is stored)."""
        return self.request("POST", "/evaluate", json=dict(body))

    def complete(self, body: Mapping[str, Any]) -> ApiResponse:
        """POST /api/v1/inference/complete: one model call for a prompt and its inputs."""
        # A retry after a lost answer must not pay for a second call.
        return self.post("/inference/complete", dict(body), idempotency_key=str(uuid.uuid4()))
