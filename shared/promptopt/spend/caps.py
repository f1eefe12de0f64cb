"""The tenant's spending cap per calendar month (UTC), set by an admin.

Admission: a batch job, an experiment run and a synchronous completion are refused with 402
`spending_cap_exceeded` when the month's spend plus the work's upper-bound estimate would pass the
cap. In flight: a batch chunk and a run step check the month's spend before they dispatch more
calls; at the cap, the job or run stops as `budget_exhausted` and keeps every result already paid
for. The spend can pass the cap by at most what was already dispatched when it was reached.

Reaching 80% of the cap logs a warning (`spend near cap`) that the monitoring alert counts.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptopt.errors import PaymentRequired
from promptopt.spend import ledger
from promptopt.store.paths import tenant_collection

if TYPE_CHECKING:
    from promptopt.auth import Principal
    from promptopt.spend.models import SpendingCapSet

log = logging.getLogger(__name__)

NEAR = 0.8
IN_FLIGHT_CHECK_S = 10.0  # how stale the in-flight view of the spend may be


def _ref(tenant: str) -> Any:
    return tenant_collection(tenant, "settings").document("spending")


def cap_of(tenant: str) -> float | None:
    """The monthly cap in USD, or None when the tenant has none."""
    value = (_ref(tenant).get().to_dict() or {}).get("monthly_cap_usd")
    return None if value is None else float(value)


def view(tenant: str) -> dict[str, Any]:
    """The cap, this month's spend and what is left: a `SpendingCap` as JSON.

    A plain dict, so that GET /spending-cap needs no pydantic on its cold start; the fields are
    tied to the model by tests/unit/test_views.py.
    """
    cap = cap_of(tenant)
    spent = float(ledger.month_spent(tenant))
    return {
        "monthly_cap_usd": None if cap is None else float(cap),
        "month": ledger.month_of(),
        "spent_usd": spent,
        "remaining_usd": None if cap is None else round(max(0.0, cap - spent), 8),
    }


def set_cap(*, principal: Principal, body: SpendingCapSet) -> dict[str, Any]:
    """Set (or with null, remove) the tenant's monthly cap."""
    _ref(principal.tenant).set(
        {
            "monthly_cap_usd": body.monthly_cap_usd,
            "updated_at": datetime.now(UTC),
            "updated_by": principal.subject,
        }
    )
    _seen.pop(principal.tenant, None)
    return view(principal.tenant)


def _warn_if_near(tenant: str, cap: float, spent: float) -> None:
    if cap > 0 and spent >= NEAR * cap:
        log.warning(
            "spend near cap",
            extra={"fields": {"spend_cap": {"tenant": tenant, "cap_usd": cap, "spent_usd": spent}}},
        )


def admit(tenant: str, estimate_usd: float, what: str) -> None:
    """402 when this month's spend plus `estimate_usd` would pass the tenant's cap."""
    cap = cap_of(tenant)
    if cap is None:
        return
    spent = ledger.month_spent(tenant)
    _warn_if_near(tenant, cap, spent + estimate_usd)
    if spent + estimate_usd > cap:
        raise PaymentRequired(
            f"{what} could cost up to ${estimate_usd:.4f}; with ${spent:.4f} spent this month it would pass "
            f"the tenant's monthly cap of ${cap:.2f} (an admin can raise it: PUT /api/v1/spending-cap)",
            cap_usd=cap,
            spent_usd=spent,
            estimate_usd=round(estimate_usd, 8),
            month=ledger.month_of(),
        )


_lock = threading.Lock()
_seen: dict[str, tuple[float, str | None]] = {}


def stop_reason(tenant: str) -> str | None:
    """Why work in flight must stop (the month's spend reached the cap), or None; cached 10 s."""
    now = time.monotonic()
    cached = _seen.get(tenant)
    if cached is not None and now - cached[0] < IN_FLIGHT_CHECK_S:
        return cached[1]
    cap = cap_of(tenant)
    reason = None
    if cap is not None:
        spent = ledger.month_spent(tenant)
        _warn_if_near(tenant, cap, spent)
        if spent >= cap:
            reason = f"spending_cap: ${spent:.4f} spent this month of a ${cap:.2f} cap"
    with _lock:
        _seen[tenant] = (now, reason)
    return reason


def forget() -> None:
    """Drop cached in-flight views (tests)."""
    with _lock:
        _seen.clear()
