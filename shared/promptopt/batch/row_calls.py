"""The model call a job makes for one row, and its cache key.

The chunk that makes the calls builds them here, and so does a run's job when it is created: it
names each chunk's cache keys in the chunk's task, so that the chunk reads its cache entries in
the same batched read as the job (see `runner.run_chunk`) instead of in a second one after it.
A key the creator got wrong only costs that second read back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from promptopt.batch import cache
from promptopt.llm.types import CompletionRequest
from promptopt.prompts.templates import TemplateError, placeholders, render

__all__ = ["TemplateError", "cache_keys", "row_request", "schema_of"]


def schema_of(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The job's response schema (stored as JSON text), if it has one."""
    stored = data.get("response_schema")
    return json.loads(stored) if stored else None


def row_request(
    data: Mapping[str, Any], inputs: dict[str, str], *, schema: dict[str, Any] | None, timeout_s: float
) -> CompletionRequest:
    """The call the job `data` makes for a row (raises TemplateError when the row cannot render)."""
    return CompletionRequest(
        user_prompt=render(str(data["output_prompt"]), inputs),
        system_prompt=str(data.get("system_prompt") or ""),
        temperature=float(data.get("temperature") or 0.0),
        max_tokens=int(data.get("max_tokens") or 1024),
        response_schema=schema,
        timeout_s=timeout_s,
    )


def cache_keys(data: Mapping[str, Any], rows: Iterable[dict[str, str]]) -> list[str]:
    """The distinct cache keys of the calls these rows make (rows that cannot run make none)."""
    model, schema = str(data["model"]), schema_of(data)
    needed = placeholders(str(data["output_prompt"]))
    keys: dict[str, None] = {}
    for inputs in rows:
        if any(name not in inputs for name in needed):
            continue
        try:
            request = row_request(data, inputs, schema=schema, timeout_s=60.0)  # not part of the key
        except TemplateError:
            continue
        keys[cache.key(model, request)] = None
    return list(keys)
