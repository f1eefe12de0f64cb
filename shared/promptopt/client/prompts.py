"""`client.prompts`: create, read, update, rename, list, lineage, labels, archive and delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from promptopt.client._base import Resource, body_of, parse
from promptopt.client.http import clean, segment
from promptopt.client.paging import pages
from promptopt.prompts.models import (
    LabelResult,
    LabelSet,
    PromptCreate,
    PromptPage,
    PromptPatch,
    PromptSummary,
    PromptUpdate,
    PromptVersion,
    VersionPage,
)


class Prompts(Resource):
    """The /api/v1/prompts endpoints."""

    def create(
        self,
        *,
        output_prompt: str,
        system_prompt: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> PromptVersion:
        """A new prompt (version 1). The same `idempotency_key` never creates twice."""
        body = body_of(
            PromptCreate,
            {
                "output_prompt": output_prompt,
                "system_prompt": system_prompt,
                "name": name,
                "metadata": metadata,
            },
        )
        return parse(PromptVersion, self._http.post("/prompts", body, idempotency_key=idempotency_key).body)

    def get(self, prompt_id: str, *, version: int | None = None, label: str | None = None) -> PromptVersion:
        """The latest version, or one by number or label."""
        reply = self._http.request(
            "GET", f"/prompts/{segment(prompt_id)}", params=clean({"version": version, "label": label})
        )
        return parse(PromptVersion, reply.body)

    def update(
        self,
        prompt_id: str,
        *,
        base_version: int | None = None,
        output_prompt: str | None = None,
        system_prompt: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> PromptVersion:
        """The next version; fields left out are kept.

        Based on `base_version` (VersionConflict, 412, when a newer version exists), or on
        whatever is latest when it is None (`If-Match: *`).
        """
        body = body_of(
            PromptUpdate,
            {
                "output_prompt": output_prompt,
                "system_prompt": system_prompt,
                "name": name,
                "metadata": metadata,
                "message": message,
            },
        )
        if_match = f'"v{base_version}"' if base_version is not None else "*"
        reply = self._http.request(
            "PUT", f"/prompts/{segment(prompt_id)}", json=body, headers={"If-Match": if_match}
        )
        return parse(PromptVersion, reply.body)

    def edit(
        self,
        prompt_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        base_version: int | None = None,
    ) -> PromptVersion:
        """Rename the prompt or change its description or tags in place (no new version).

        Guarded by `base_version` like `update` (VersionConflict when a newer version exists).
        """
        body = body_of(PromptPatch, {"name": name, "description": description, "tags": tags})
        if_match = f'"v{base_version}"' if base_version is not None else "*"
        reply = self._http.request(
            "PATCH", f"/prompts/{segment(prompt_id)}", json=body, headers={"If-Match": if_match}
        )
        return parse(PromptVersion, reply.body)

    def archive(self, prompt_id: str) -> PromptSummary:
        """Hide the prompt from listings (admin; Conflict while a label or experiment uses it)."""
        return parse(PromptSummary, self._http.post(f"/prompts/{segment(prompt_id)}/archive").body)

    def unarchive(self, prompt_id: str) -> PromptSummary:
        """List the prompt again (admin)."""
        return parse(PromptSummary, self._http.post(f"/prompts/{segment(prompt_id)}/unarchive").body)

    def delete(self, prompt_id: str) -> None:
        """Delete the prompt with all its versions (admin; Conflict while a label or experiment uses it)."""
        self._http.request("DELETE", f"/prompts/{segment(prompt_id)}")

    def list(
        self,
        *,
        name: str | None = None,
        label: str | None = None,
        sort: str | None = None,
        include_archived: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> PromptPage:
        """One page of prompts, newest first unless `sort` (created, updated, name; '-' for descending)."""
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
        return parse(PromptPage, self._http.request("GET", "/prompts", params=params).body)

    def iterate(
        self,
        *,
        name: str | None = None,
        label: str | None = None,
        sort: str | None = None,
        include_archived: bool = False,
        page_size: int | None = None,
    ) -> Iterator[PromptSummary]:
        """Every prompt in the listing's order, fetching pages as the loop needs them."""
        for page in pages(
            lambda token: self.list(
                name=name,
                label=label,
                sort=sort,
                include_archived=include_archived,
                page_size=page_size,
                page_token=token,
            )
        ):
            yield from page.items

    def versions(
        self, prompt_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> VersionPage:
        """One page of the lineage, newest first, with the current labels."""
        params = clean({"page_size": page_size, "page_token": page_token})
        reply = self._http.request("GET", f"/prompts/{segment(prompt_id)}/versions", params=params)
        return parse(VersionPage, reply.body)

    def iterate_versions(self, prompt_id: str, *, page_size: int | None = None) -> Iterator[PromptVersion]:
        """Every version of a prompt, newest first."""
        for page in pages(lambda token: self.versions(prompt_id, page_size=page_size, page_token=token)):
            yield from page.items

    def set_label(self, prompt_id: str, label: str, *, version: int) -> LabelResult:
        """Point `label` (e.g. production) at a version."""
        body = body_of(LabelSet, {"version": version})
        path = f"/prompts/{segment(prompt_id)}/labels/{segment(label)}"
        return parse(LabelResult, self._http.request("PUT", path, json=body).body)

    def remove_label(self, prompt_id: str, label: str) -> LabelResult:
        """Remove a label."""
        path = f"/prompts/{segment(prompt_id)}/labels/{segment(label)}"
        return parse(LabelResult, self._http.request("DELETE", path).body)
