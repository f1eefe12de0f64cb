"""What a tenant has spent: a monthly ledger of sharded counters, and daily sync-call usage.

Every place that pays for model calls adds what it spent, as it spends it: a batch chunk after its
rows are written (job and run evaluations alike), the run engine after optimizer calls, a
synchronous completion, and a synchronous evaluation's model-backed metrics (llm_judge,
embedding_similarity). The month's total is the sum of `SHARDS` counter documents (one
`get_all`), each taking a random increment, so no document takes more than its share of the
writes (Firestore sustains about one write per second per document).

    tenants/{t}/spend/{yyyy-mm}-{shard}              calls and cost_usd of the month (increments)
    tenants/{t}/usage_daily/{yyyy-mm-dd}~{model}~{shard}   synchronous calls by day and model
                                                           (completions and evaluations)

Jobs and runs keep their own figures; usage reports read those, and only synchronous calls, which
leave no other record, from `usage_daily`.
"""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import UTC, datetime
from typing import Any

from promptopt.store.paths import tenant_collection

log = logging.getLogger(__name__)

SHARDS = 8


def month_of(at: datetime | None = None) -> str:
    """`yyyy-mm` of a time (now by default), in UTC: caps are per calendar month."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m")


def _shard_ref(tenant: str, month: str, shard: int) -> Any:
    return tenant_collection(tenant, "spend").document(f"{month}-{shard:02d}")


def record(tenant: str, *, cost_usd: float, calls: int, at: datetime | None = None) -> None:
    """Add spent money and calls to the tenant's month (nothing to add, nothing written)."""
    if calls <= 0 and cost_usd <= 0:
        return
    from google.cloud.firestore import Increment

    month = month_of(at)
    ref = _shard_ref(tenant, month, random.randrange(SHARDS))  # noqa: S311 - load spreading, not security
    try:
        ref.set(
            {"month": month, "calls": Increment(int(calls)), "cost_usd": Increment(float(cost_usd))},
            merge=True,
        )
    except Exception:
        log.exception(
            "spend not recorded", extra={"fields": {"tenant": tenant, "cost_usd": cost_usd, "calls": calls}}
        )
        return
    log.info(
        "model spend",
        extra={"fields": {"spend": {"tenant": tenant, "cost_usd": round(cost_usd, 8), "calls": calls}}},
    )


def month_spent(tenant: str, month: str | None = None) -> float:
    """The tenant's spend in a calendar month (this one by default), in USD."""
    from promptopt.clients import firestore_client

    month = month or month_of()
    refs = [_shard_ref(tenant, month, shard) for shard in range(SHARDS)]
    return round(
        sum(float((s.to_dict() or {}).get("cost_usd") or 0.0) for s in firestore_client().get_all(refs)), 8
    )


def _model_key(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()[:12]


def record_sync(
    tenant: str, *, model: str, input_tokens: int, output_tokens: int, cost_usd: float, calls: int = 1
) -> None:
    """Synchronous calls of one model: the day's usage by model, and the month's spend.

    A completion records one call; an evaluation records its model-backed metrics' calls per model.
    """
    from google.cloud.firestore import Increment

    now = datetime.now(UTC)
    day = now.strftime("%Y-%m-%d")
    shard = random.randrange(SHARDS)  # noqa: S311 - load spreading, not security
    ref = tenant_collection(tenant, "usage_daily").document(f"{day}~{_model_key(model)}~{shard}")
    try:
        ref.set(
            {
                "date": day,
                "model": model,
                "calls": Increment(int(calls)),
                "input_tokens": Increment(int(input_tokens)),
                "output_tokens": Increment(int(output_tokens)),
                "cost_usd": Increment(float(cost_usd)),
            },
            merge=True,
        )
    except Exception:
        log.exception("sync usage not recorded", extra={"fields": {"tenant": tenant, "model": model}})
    record(tenant, cost_usd=cost_usd, calls=calls, at=now)


def sync_usage(tenant: str, since: str, until: str) -> list[dict[str, Any]]:
    """Daily sync-call records with `since <= date < until` (dates as yyyy-mm-dd)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        tenant_collection(tenant, "usage_daily")
        .where(filter=FieldFilter("date", ">=", since))
        .where(filter=FieldFilter("date", "<", until))
    )
    return [s.to_dict() or {} for s in query.stream()]
