"""Schemas of the spending cap."""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from pydantic import Field

from promptopt.http.models import RequestModel, ResponseModel


class SpendingCapSet(RequestModel):
    """PUT /api/v1/spending-cap: the tenant's cap per calendar month (UTC), or null for none."""

    monthly_cap_usd: float | None = Field(..., ge=0, le=10_000_000)


class SpendingCap(ResponseModel):
    """The cap, this month's spend and what is left."""

    monthly_cap_usd: float | None
    month: str = Field(description="yyyy-mm (UTC)")
    spent_usd: float
    remaining_usd: float | None
