"""Per-tenant response cache: an identical call (model, parameters, messages) is answered for free.

Entries live at `tenants/{t}/cache/{sha256}` with `expires_at`; a Firestore TTL policy deletes
them some time after that passes (up to a day late), so reads check `expires_at` themselves.
One `get_all` looks up a whole chunk (or its first read does, when its task names the keys: see
`row_calls`); one batch writes its new answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from promptopt.batch import paths
from promptopt.batch.state import now
from promptopt.llm.types import CompletionRequest

_WRITE_BATCH = 400


@dataclass(frozen=True)
class CachedAnswer:
    """What a cache entry keeps of a completion."""

    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int


def key(model: str, request: CompletionRequest) -> str:
    """The cache key: SHA-256 of the model, the sampling parameters and the messages."""
    canonical = json.dumps(
        {
            "model": model,
            "params": {
                "temperature": request.temperature,
                "max_tokens": request.max_tokens,
                "response_schema": request.response_schema,
            },
            "messages": [
                {"role": "system", "content": request.system_prompt},
                {"role": "user", "content": request.user_prompt},
            ],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def lookup(tenant: str, keys: Iterable[str]) -> dict[str, CachedAnswer]:
    """The live entries among `keys` (one batched read)."""
    from promptopt.clients import firestore_client

    wanted = sorted(set(keys))
    if not wanted:
        return {}
    refs = [paths.cache_ref(tenant, k) for k in wanted]
    return live(firestore_client().get_all(refs))


def live(snapshots: Iterable[Any]) -> dict[str, CachedAnswer]:
    """The live entries among read cache documents, by key (missing and expired ones left out)."""
    found: dict[str, CachedAnswer] = {}
    current = now()
    for snapshot in snapshots:
        if not snapshot.exists:
            continue
        data = snapshot.to_dict() or {}
        expires: datetime | None = data.get("expires_at")
        if expires is None or expires <= current:
            continue
        found[snapshot.id] = CachedAnswer(
            text=str(data.get("text", "")),
            finish_reason=str(data.get("finish_reason") or ""),
            input_tokens=int(data.get("input_tokens") or 0),
            output_tokens=int(data.get("output_tokens") or 0),
        )
    return found


def store(tenant: str, model: str, answers: dict[str, CachedAnswer], ttl_s: int) -> None:
    """Remember answers (overwriting older entries of the same key)."""
    from promptopt.clients import firestore_client

    if not answers:
        return
    client = firestore_client()
    items = list(answers.items())
    for start in range(0, len(items), _WRITE_BATCH):
        batch = client.batch()
        put(batch, tenant, model, dict(items[start : start + _WRITE_BATCH]), ttl_s)
        batch.commit()


def put(batch: Any, tenant: str, model: str, answers: dict[str, CachedAnswer], ttl_s: int) -> None:
    """Add `store`'s writes of `answers` to the caller's `batch` (at most 500 writes in all)."""
    stamp = now()
    for cache_key, answer in answers.items():
        entry: dict[str, Any] = {
            "model": model,
            "text": answer.text,
            "finish_reason": answer.finish_reason,
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "created_at": stamp,
            "expires_at": stamp + timedelta(seconds=ttl_s),
        }
        batch.set(paths.cache_ref(tenant, cache_key), entry)
