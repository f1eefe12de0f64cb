"""GET /api/v1/usage: calls, tokens and cost by day, model and job or experiment, over a range of days.

Read from what the work itself recorded, so the report and the jobs can never disagree:
- a batch job counts with its own figures (frozen totals once finished, its results' sums until
  then), on the day it was created, under its model; a job an experiment run owns counts under
  that experiment;
- an experiment run adds its optimizer calls (the run's `optimizer_*` usage), on the day the run
  started, under its optimizer model;
- synchronous completions come from the daily records they leave (`spend.ledger.record_sync`).
Cache hits are not calls and cost nothing; they are counted on their own.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from promptopt.errors import InvalidRequest

if TYPE_CHECKING:
    from promptopt.auth import Principal
    from promptopt.usage.models import UsageQuery

# The report is a plain dict (no pydantic on the endpoint's cold start); tests/unit/test_views.py
# checks it against UsageReport.


class UsageDefaults(NamedTuple):
    """UsageQuery with nothing given (GET /usage without a query string: this month so far)."""

    since: date | None = None
    until: date | None = None


MAX_DAYS = 366
MAX_JOBS = 5000
_FIELDS = ("calls", "cache_hits", "input_tokens", "output_tokens", "cost_usd")
# Only what the report reads: a job or run document also holds its config, plan and state, and
# decoding those for every job of a month was most of the report's time.
_JOB_FIELDS = ["created_at", "model", "owner", "totals"]
_RUN_FIELDS = ["experiment_id", "created_at", "usage", "config.optimizer_model"]


def _range(query: UsageQuery | UsageDefaults) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    since = query.since or today.replace(day=1)
    until = query.until or today + timedelta(days=1)
    if until <= since:
        raise InvalidRequest("until must be after since", code="invalid_range")
    if (until - since).days > MAX_DAYS:
        raise InvalidRequest(f"a report covers at most {MAX_DAYS} days", code="invalid_range")
    return since, until


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class _Sums:
    """Figures summed under keys."""

    def __init__(self) -> None:
        self.values: dict[Any, dict[str, float]] = defaultdict(lambda: dict.fromkeys(_FIELDS, 0.0))

    def add(self, key: Any, figures: dict[str, Any]) -> None:
        into = self.values[key]
        for name in _FIELDS:
            into[name] += float(figures.get(name) or 0)


def _figures(values: dict[str, float]) -> dict[str, Any]:
    return {
        "calls": int(values["calls"]),
        "cache_hits": int(values["cache_hits"]),
        "input_tokens": int(values["input_tokens"]),
        "output_tokens": int(values["output_tokens"]),
        "cost_usd": round(values["cost_usd"], 8),
    }


def _job_totals(snapshots: list[Any]) -> list[dict[str, Any]]:
    """Each job's totals: as frozen at its end, or summed from its chunks (all at once) until then."""
    from promptopt.batch.totals import many_job_totals

    frozen = [(s.to_dict() or {}).get("totals") for s in snapshots]
    live = iter(many_job_totals([s.reference for s, t in zip(snapshots, frozen, strict=True) if not t]))
    totals = [t or next(live) for t in frozen]
    return [{name: t.get(name, 0) for name in _FIELDS} for t in totals]


def usage_report(*, principal: Principal, query: UsageQuery | UsageDefaults) -> dict[str, Any]:
    """The tenant's usage between `since` (included) and `until` (excluded), UTC days.

    A UsageReport, as a plain dict.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.batch import paths as batch_paths
    from promptopt.spend import ledger

    since, until = _range(query)
    tenant = principal.tenant
    by_day, by_model, by_source, totals = _Sums(), _Sums(), _Sums(), _Sums()
    counts: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: {"jobs": set(), "runs": set()})
    notes: list[str] = []

    def add(day: str, model: str, source: tuple[str, str], figures: dict[str, Any]) -> None:
        for sums, key in ((by_day, day), (by_model, model), (by_source, source), (totals, "all")):
            sums.add(key, figures)

    jobs = (
        batch_paths.jobs(tenant)
        .where(filter=FieldFilter("created_at", ">=", _start(since)))
        .where(filter=FieldFilter("created_at", "<", _start(until)))
        .select(_JOB_FIELDS)
        .limit(MAX_JOBS + 1)
    )
    found = list(jobs.stream())
    if len(found) > MAX_JOBS:
        notes.append(f"more than {MAX_JOBS} jobs in the range: only the first {MAX_JOBS} are counted")
    for snapshot, figures in zip(found[:MAX_JOBS], _job_totals(found[:MAX_JOBS]), strict=True):
        data = snapshot.to_dict() or {}
        owner = data.get("owner") or {}
        source = (
            ("experiment", str(owner["experiment_id"]))
            if owner.get("experiment_id")
            else ("job", snapshot.id)
        )
        add(
            data["created_at"].date().isoformat(),
            str(data.get("model")),
            source,
            figures,
        )
        counts[source]["jobs"].add(snapshot.id)
        if owner.get("run_id"):
            counts[source]["runs"].add(str(owner["run_id"]))
    _add_optimizer(tenant, since, until, add, counts)
    for record in ledger.sync_usage(tenant, since.isoformat(), until.isoformat()):
        add(str(record["date"]), str(record.get("model")), ("sync", "sync"), record)
    return assemble(since, until, totals, by_day, by_model, by_source, counts, notes)


def assemble(
    since: date,
    until: date,
    totals: _Sums,
    by_day: _Sums,
    by_model: _Sums,
    by_source: _Sums,
    counts: dict[tuple[str, str], dict[str, set[str]]],
    notes: list[str],
) -> dict[str, Any]:
    """The report from its sums: a UsageReport's fields, as a plain dict."""
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "totals": _figures(totals.values["all"]) if totals.values else _figures(dict.fromkeys(_FIELDS, 0.0)),
        "by_day": [{**_figures(v), "date": k} for k, v in sorted(by_day.values.items())],
        "by_model": [{**_figures(v), "model": k} for k, v in sorted(by_model.values.items())],
        "by_source": [
            {
                **_figures(v),
                "kind": kind,
                "id": ident,
                "jobs": len(counts[(kind, ident)]["jobs"]),
                "runs": len(counts[(kind, ident)]["runs"]),
            }
            for (kind, ident), v in sorted(by_source.values.items(), key=lambda kv: -kv[1]["cost_usd"])
        ],
        "notes": notes,
    }


def _add_optimizer(tenant: str, since: date, until: date, add: Any, counts: Any) -> None:
    """Each run's optimizer calls, under its experiment, on the day the run started.

    One query over every experiment's runs (the tenant's, in the range; index runs_per_tenant_created),
    not one per experiment: the report's time must not grow with the number of experiments.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    from promptopt.clients import firestore_client

    runs = (
        firestore_client()
        .collection_group("runs")
        .where(filter=FieldFilter("tenant", "==", tenant))
        .where(filter=FieldFilter("created_at", ">=", _start(since)))
        .where(filter=FieldFilter("created_at", "<", _start(until)))
        .select(_RUN_FIELDS)
    )
    for run in runs.stream():
        data = run.to_dict() or {}
        usage = data.get("usage") or {}
        experiment_id = data.get("experiment_id") or run.reference.parent.parent.id
        source = ("experiment", str(experiment_id))
        counts[source]["runs"].add(run.id)
        if not usage.get("optimizer_calls"):
            continue
        figures = {
            "calls": usage.get("optimizer_calls", 0),
            "input_tokens": usage.get("optimizer_input_tokens", 0),
            "output_tokens": usage.get("optimizer_output_tokens", 0),
            "cost_usd": usage.get("optimizer_cost_usd", 0.0),
        }
        model = str((data.get("config") or {}).get("optimizer_model") or "optimizer")
        add(data["created_at"].date().isoformat(), model, source, figures)
