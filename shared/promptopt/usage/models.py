"""Schemas of usage reports, the spending cap and the model catalog."""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from datetime import date
from typing import Literal

from pydantic import Field

from promptopt.http.models import RequestModel, ResponseModel


class UsageQuery(RequestModel):
    """GET /api/v1/usage: a range of days (UTC), `since` included, `until` excluded."""

    since: date | None = Field(None, description="first day (default: the first of this month)")
    until: date | None = Field(None, description="day after the last (default: tomorrow)")


class UsageFigures(ResponseModel):
    """Model calls made (cache hits are not calls), tokens and cost."""

    calls: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class DayUsage(UsageFigures):
    """One UTC day."""

    date: str


class ModelUsage(UsageFigures):
    """One model."""

    model: str


class SourceUsage(UsageFigures):
    """One batch job, experiment, or the synchronous calls."""

    kind: Literal["job", "experiment", "sync"]
    id: str = Field(description="job id, experiment id, or 'sync'")
    jobs: int = 0
    runs: int = 0


class UsageReport(ResponseModel):
    """Usage over a range of days, by day, by model and by job or experiment."""

    since: str
    until: str
    totals: UsageFigures
    by_day: list[DayUsage]
    by_model: list[ModelUsage]
    by_source: list[SourceUsage]
    notes: list[str] = Field(default_factory=list)


class ModelPrice(ResponseModel):
    """USD per one million input and output units."""

    input_per_m: float
    output_per_m: float
    unit: Literal["token", "character"] = "token"


class ModelInfo(ResponseModel):
    """One model id this deployment serves."""

    model: str
    provider: str
    kind: Literal["generate", "embed"] = "generate"
    simulated: bool
    default: bool
    price: ModelPrice | None = None


class ModelCatalog(ResponseModel):
    """GET /api/v1/models."""

    default_model: str
    prices_checked: str = Field(
        description="when the bundled prices were checked against the providers' lists"
    )
    items: list[ModelInfo]
