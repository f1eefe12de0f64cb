"""Handlers that answer with plain dicts (no pydantic on their cold start) publish their models' JSON.

Each dict view must have exactly its response model's fields, in order, and serialize as the
model would: the OpenAPI document, generated from the models, stays the one description.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from pydantic import BaseModel

from promptopt.access import audit, exchange, keys, members
from promptopt.access.models import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyPage,
    AuditEntry,
    AuditPage,
    AuditQuery,
    Member,
    MemberPage,
    MemberRole,
    TokenRequest,
    TokenResponse,
)
from promptopt.http.problems import json_default
from promptopt.prompts import service as prompts
from promptopt.prompts.models import (
    LabelResult,
    PromptGetQuery,
    PromptListQuery,
    PromptPage,
    PromptSummary,
    PromptVersion,
    VersionPage,
    VersionsQuery,
)
from promptopt.spend import caps, ledger
from promptopt.spend.models import SpendingCap

AT = DatetimeWithNanoseconds(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def assert_publishes(model: type[BaseModel], view: dict[str, Any]) -> None:
    """`view`, as the endpoint writes it, is the model's JSON for the same data."""
    assert list(view) == list(model.model_fields)
    written = json.dumps(view, default=json_default, separators=(",", ":"))
    assert written == model.model_validate(view).model_dump_json()


KEY_RECORDS = [
    {
        "key_id": "0123456789abcdef",
        "tenant": "t",
        "name": "ci",
        "role": "viewer",
        "prefix": "pok_01234567",
        "hash": "x" * 64,
        "created_at": AT,
        "created_by": "u1",
        "last_used_at": datetime(2026, 3, 5, 0, 0, tzinfo=UTC),
    },
    {
        "key_id": "fedcba9876543210",
        "tenant": "t",
        "name": "old",
        "role": "admin",
        "prefix": "pok_fedcba98",
        "hash": "y" * 64,
        "created_at": AT,
        "created_by": "u2",
        "expires_at": datetime(2026, 1, 1, tzinfo=UTC),
        "revoked_at": AT,
        "revoked_by": "u1",
    },
]


@pytest.mark.parametrize("record", KEY_RECORDS)
def test_api_key_view(record: dict[str, Any]) -> None:
    assert_publishes(ApiKey, keys.view(record))


def test_api_key_page() -> None:
    page = {"items": [keys.view(r) for r in KEY_RECORDS], "next_page_token": None}
    assert list(page) == list(ApiKeyPage.model_fields)
    written = json.loads(json.dumps(page, default=json_default))
    assert written == json.loads(ApiKeyPage.model_validate(page).model_dump_json())


@pytest.mark.parametrize(
    "record",
    [
        {
            "uid": "u1",
            "role": "admin",
            "email": "a@example.com",
            "updated_at": AT,
            "updated_by": "u0",
            "x": 1,
        },
        {"uid": "u2", "role": "viewer"},
    ],
)
def test_member_view(record: dict[str, Any]) -> None:
    assert_publishes(Member, members.view(record))
    page = {"items": [members.view(record)], "next_page_token": None}
    assert list(page) == list(MemberPage.model_fields)


@pytest.mark.parametrize(("cap", "spent"), [(None, 0), (10.0, 2.5), (1.0, 3.25), (5, 0)])
def test_spending_cap_view(monkeypatch: pytest.MonkeyPatch, cap: float | None, spent: float) -> None:
    monkeypatch.setattr(caps, "cap_of", lambda _tenant: cap)
    monkeypatch.setattr(ledger, "month_spent", lambda _tenant: spent)
    assert_publishes(SpendingCap, caps.view("t"))


class _Snapshot:
    def __init__(self, doc_id: str, data: dict[str, Any]) -> None:
        self.id, self._data = doc_id, data

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


@pytest.mark.parametrize(
    "head",
    [
        {
            "name": "support",
            "latest_version": 3,
            "labels": {"production": 2, "staging": 3},
            "description": "triage",
            "tags": ["a", "b"],
            "archived": True,
            "archived_at": AT,
            "created_at": AT,
            "updated_at": datetime(2026, 3, 4, tzinfo=UTC),
            "created_by": "u1",
        },
        {"latest_version": 1, "created_at": AT, "updated_at": AT, "created_by": "u1"},  # before tags
    ],
)
def test_prompt_summary_view(head: dict[str, Any]) -> None:
    summary = prompts.summary_from(_Snapshot("pr_0123456789abcdef0123", head))  # type: ignore[arg-type]
    assert_publishes(PromptSummary, summary)
    assert PromptPage.model_validate({"items": [summary], "next_page_token": None}).items[0].name == head.get(
        "name"
    )


def test_label_result_view() -> None:
    assert_publishes(LabelResult, prompts.label_result("pr_0123456789abcdef0123", {"production": 2, "b": 1}))


HEAD = {
    "name": "support",
    "labels": {"production": 2, "staging": 2, "old": 1},
    "tags": ["x"],
    "latest_version": 2,
}
VERSIONS = [
    {
        "prompt_id": "pr_0123456789abcdef0123",
        "version": 2,
        "parent_id": "pr_0123456789abcdef0123@1",
        "system_prompt": "Be brief.",
        "output_prompt": "Q: {question} ({context})",
        "metadata": {"team": "a", "n": 3, "f": 0.5, "ok": True, "none": None},
        "provenance": {"source": "optimizer", "message": None, "details": {"run_id": "r", "score": 0.75}},
        "created_at": AT,
        "created_by": "optimizer:ex_1",
    },
    {  # version 1 of a prompt from before provenance, tags and metadata were stored
        "prompt_id": "pr_0123456789abcdef0123",
        "version": 1,
        "name": "old name",
        "system_prompt": "",
        "output_prompt": "{input}",
        "created_at": AT,
        "created_by": "u1",
    },
]


@pytest.mark.parametrize("head", [HEAD, {"archived": True, "description": "d", "latest_version": 2}])
@pytest.mark.parametrize("data", VERSIONS)
def test_prompt_version_view(data: dict[str, Any], head: dict[str, Any]) -> None:
    view = prompts.version_view(data, head)
    assert_publishes(PromptVersion, view)
    page = {"items": [view], "next_page_token": None, "labels": head.get("labels") or {}}
    assert list(page) == list(VersionPage.model_fields)


def test_query_defaults_match_the_models() -> None:
    assert prompts.ListDefaults()._asdict() == PromptListQuery().model_dump()
    assert list(prompts.ListDefaults()._asdict()) == list(PromptListQuery.model_fields)
    assert prompts.VersionsDefaults()._asdict() == VersionsQuery().model_dump()
    assert list(prompts.VersionsDefaults()._asdict()) == list(VersionsQuery.model_fields)


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"version": "1"},
        {"version": "07"},
        {"version": str(2**31 - 1)},
        {"version": str(2**31)},
        {"version": "0"},
        {"version": "-1"},
        {"version": "+1"},
        {"version": "1.0"},
        {"version": "\u0661"},  # a digit, but not an ASCII one
        {"version": ""},
        {"label": "production"},
        {"label": "Production"},
        {"label": "a" * 33},
        {"label": ""},
        {"label": "x", "version": "1"},
        {"labels": "x"},
        {"sort": "name"},
    ],
)
def test_simple_selector_agrees_with_the_query_model(args: dict[str, str]) -> None:
    found = prompts.simple_selector(args)
    try:
        query = PromptGetQuery.model_validate(args, strict=False)
    except ValueError:
        assert found is None  # an invalid query always reaches the model, which words the 400
        return
    if found is not None:
        assert found == (query.version, query.label)


@pytest.mark.parametrize(
    "entry",
    [
        {
            "entry_id": "e1",
            "at": AT,
            "action": "prompts_create",
            "method": "POST",
            "path": "/api/v1/prompts",
            "status": 201,
            "resource_id": "pr_1",
            "actor": "u1",
            "role": "editor",
            "credential": "api_key",
            "key_id": "0123456789abcdef",
            "trace": "t",
            "expires_at": AT,
        },
        {
            "entry_id": "e2",
            "at": AT,
            "action": "members_remove",
            "method": "DELETE",
            "path": "/api/v1/members/x",
            "status": 204,
            "actor": "u1",
            "role": "admin",
            "credential": "user",
        },
    ],
)
def test_audit_entry_view(entry: dict[str, Any]) -> None:
    assert_publishes(AuditEntry, audit.view(entry))
    assert list({"items": [], "next_page_token": None}) == list(AuditPage.model_fields)


def test_audit_query_defaults_match_the_model() -> None:
    assert audit.ListDefaults()._asdict() == AuditQuery().model_dump()
    assert list(audit.ListDefaults()._asdict()) == list(AuditQuery.model_fields)


# Batch jobs, their results and the usage report: answered as dicts by GET /inference/batch/…,
# the job listing and GET /usage.

JOB = {
    "job_id": "bj_0123456789abcdef0123",
    "kind": "batch",
    "status": "running",
    "model": "sim:default",
    "prompt": {"prompt_id": "pr_0123456789abcdef0123", "version": 3, "label": "extra"},
    "source": {"type": "dataset", "dataset_id": "ds_1", "dataset_version": 2, "split": "test"},
    "chunk_size": 50,
    "chunks": 2,
    "concurrency": 8,
    "cache": True,
    "budget": {"max_calls": 100},
    "total_rows": 90,
    "totals": {"succeeded": 40, "failed": 2, "cache_hits": 5, "calls": 37, "input_tokens": 900,
               "output_tokens": 80, "cost_usd": 0},
    "created_at": AT,
    "updated_at": AT,
    "created_by": "alice",
}  # fmt: skip
METRIC = {"name": "exact_match", "mean": 1, "ci_low": 0.5, "ci_high": 1.0, "n": 4}
JUDGE_METRIC = {
    "name": "llm_judge", "mean": 0.25, "ci_low": 0.0, "ci_high": 0.7, "n": 4, "errors": 1,
    "usage": {"model": "sim:judge", "calls": 4, "input_tokens": 10, "output_tokens": 2, "cost_usd": 0,
              "simulated": True},
}  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        JOB,
        {
            **JOB,
            "prompt": None,
            "source": {"type": "inline"},
            "budget": None,
            "totals": {**JOB["totals"], "judge_calls": 3, "cost_usd": 0.125},
        },
        {
            **JOB,
            "status": "failed",
            "error": {"code": "enqueue_failed", "message": "retry"},
            "finished_at": AT,
            "stop_reason": "failed",
            "cache": False,
            "budget": {"max_calls": 5, "max_tokens": 7, "max_cost_usd": 2},
        },
        {
            **JOB,
            "kind": "evaluation",
            "status": "completed",
            "evaluation": {
                "status": "completed",
                "metrics": [METRIC, JUDGE_METRIC],
                "n": 4,
                "failed_rows": 1,
                "partial": True,
                "spec": "[]",
            },
        },
        {**JOB, "kind": "evaluation", "status": "cancelled", "evaluation": {"status": "pending"}},
        {
            **JOB,
            "kind": "evaluation",
            "status": "completed",
            "evaluation": {"status": "failed", "error": {"code": "x", "message": "y"}},
        },
    ],
)
def test_batch_job_view(data: dict[str, Any]) -> None:
    from promptopt.batch.models import BatchJob
    from promptopt.batch.view import job_dict

    view = job_dict(None, data)  # type: ignore[arg-type]  # totals given: no read
    assert_publishes(BatchJob, view)


def test_a_fresh_job_reads_nothing() -> None:
    from promptopt.batch.models import BatchJob
    from promptopt.batch.view import job_dict

    view = job_dict(None, {k: v for k, v in JOB.items() if k != "totals"}, fresh=True)  # type: ignore[arg-type]
    assert_publishes(BatchJob, view)
    assert view["progress"]["pending"] == 90


RESULT = {
    "row": 7, "status": "succeeded", "output": "yes", "inputs": {"input": "q"}, "reference": "yes",
    "dataset_row": 70, "split": "test", "cached": True, "input_tokens": 9, "output_tokens": 1,
    "cost_usd": 0, "latency_ms": 12, "finish_reason": "stop",
}  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        RESULT,
        {"row": 0, "status": "failed", "output": None, "error": {"code": "blocked", "message": "m"}},
        {
            **RESULT,
            "judge": {
                "llm_judge": {"score": 1, "reason": "fine", "model": "sim:judge", "cached": False},
                "embedding_similarity": {
                    "score": 0.0,
                    "error": {"code": "e", "message": "m"},
                    "model": "sim:embed",
                    "cached": True,
                },
            },
        },
    ],
)
def test_batch_result_view(data: dict[str, Any]) -> None:
    from promptopt.batch import results
    from promptopt.batch.read_models import BatchResultRow, ResultsPage

    assert_publishes(BatchResultRow, results.row_dict(data))
    page = {"items": [results.row_dict(data)], "next_page_token": "t", "job_id": "bj_x"}
    assert_publishes(ResultsPage, page)


def test_batch_query_defaults_match_the_models() -> None:
    from promptopt.batch import listing, results
    from promptopt.batch.read_models import BatchJobPage, BatchListQuery, ResultsQuery
    from promptopt.batch.view import job_dict

    for defaults, model in (
        (listing.ListDefaults(), BatchListQuery),
        (results.ResultsDefaults(), ResultsQuery),
    ):
        assert defaults._asdict() == model().model_dump()
        assert list(defaults._asdict()) == list(model.model_fields)
    assert_publishes(BatchJobPage, {"items": [job_dict(None, JOB)], "next_page_token": None})  # type: ignore[arg-type]


def test_usage_report_view() -> None:
    from datetime import date

    from promptopt.usage import report
    from promptopt.usage.models import UsageQuery, UsageReport

    assert report.UsageDefaults()._asdict() == UsageQuery().model_dump()
    assert list(report.UsageDefaults()._asdict()) == list(UsageQuery.model_fields)
    empty = [report._Sums() for _ in range(4)]
    since, until = date(2026, 3, 1), date(2026, 4, 1)
    assert_publishes(UsageReport, report.assemble(since, until, *empty, {}, []))
    sums = [report._Sums() for _ in range(4)]
    figures = {"calls": 3, "cache_hits": 1, "input_tokens": 10, "output_tokens": 2, "cost_usd": 0.5}
    for into, key in zip(sums, ("all", "2026-03-02", "sim:default", ("job", "bj_1")), strict=True):
        into.add(key, figures)
    counts = {("job", "bj_1"): {"jobs": {"bj_1"}, "runs": set()}}
    view = report.assemble(since, until, *sums, counts, ["a note"])
    assert_publishes(UsageReport, view)
    assert view["by_source"][0]["jobs"] == 1
    assert view["totals"]["cost_usd"] == 0.5


class _RunSnapshot:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


RUN = {
    "run_id": "run_0123456789abcdef", "experiment_id": "ex_0123456789abcdef0123", "status": "running",
    "step": "screening", "state": {"iteration": 2, "seq": 7}, "progress": 0.5,
    "created_at": AT, "updated_at": AT,
}  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        RUN,
        {**RUN, "status": "queued", "step": None, "state": None, "progress": None},
        {
            **RUN,
            "status": "completed",
            "trigger": "schedule",
            "scheduled_for": AT,
            "reason": "done",
            "usage": {"task_calls": 9, "optimizer_calls": 2, "cost_usd": 0},
            "baseline": {"mean": 0, "ci_low": 0, "ci_high": 0.2, "n": 50},
            "best": {"mean": 0.8},
            "best_version": 3,
            "lift": {"mean": 0.8, "ci_low": 0.7, "ci_high": 0.9, "n": 50},
            "finished_at": AT,
        },
    ],
)
def test_run_view(data: dict[str, Any]) -> None:
    from promptopt.experiments import run_view, runs
    from promptopt.experiments.models import ACTIVE_RUN_STATUSES
    from promptopt.experiments.view_models import RunEvent, RunPage, RunView
    from promptopt.http.models import PageQuery

    view = run_view.run_dict(_RunSnapshot(data))
    assert_publishes(RunView, view)
    assert runs.view(_RunSnapshot(data)) == RunView.model_validate(view)
    assert_publishes(RunEvent, run_view._event({"at": AT, "kind": "cancelled", "message": "by a"}))
    assert run_view.ACTIVE == ACTIVE_RUN_STATUSES
    assert_publishes(RunPage, {"items": [view], "next_page_token": None})
    assert run_view.PageDefaults()._asdict() == PageQuery().model_dump()
    assert list(run_view.PageDefaults()._asdict()) == list(PageQuery.model_fields)


# Datasets: GET, the listing, rows and samples answer dicts (datasets.views).

STATS = {
    "rows": 10,
    "rows_per_split": {"train": 6, "validation": 2, "test": 2},
    "inputs": {"input": {"min_chars": 1, "max_chars": 9, "mean_chars": 4, "empty": 0}},
    "reference": {"distinct": 2, "top": [{"value": "yes", "count": 6}], "missing": 1},
    "total_chars": 90,
}
VERSION = {
    "dataset_id": "ds_0123456789abcdef0123", "version": 2, "status": "ready", "origin": "inline",
    "format": "jsonl", "source": "gs://b/o", "created_at": AT, "updated_at": AT, "ready_at": AT,
    "bytes": 123, "rows_ok": 10, "rows_bad": 1, "bad_rows": [{"line": 3, "reason": "no input"}],
    "stats": STATS, "tenant": "t", "split_counts": {"train": 6},
}  # fmt: skip
DATASET = {
    "dataset_id": "ds_0123456789abcdef0123", "name": "qa", "description": "", "format": "csv",
    "mapping": {"inputs": ["question"], "reference": "answer"},
    "splits": {"train": 0.5, "validation": 0.25, "test": 0.25}, "split_seed": 7,
    "bad_row_policy": "skip_bad_rows", "max_bad_fraction": 0, "created_at": AT, "updated_at": AT,
    "created_by": "alice", "latest_version": 2, "version_count": 2, "tenant": "t",
}  # fmt: skip


@pytest.mark.parametrize(
    "version",
    [
        VERSION,
        {
            **VERSION,
            "status": "pending",
            "ready_at": None,
            "bytes": None,
            "rows_ok": None,
            "rows_bad": None,
            "bad_rows": None,
            "stats": None,
        },
        {
            **VERSION,
            "status": "failed",
            "failure": {"code": "too_many_bad_rows", "reason": "r"},
            "stats": {**STATS, "reference": None},
        },
        {**VERSION, "stats": {**STATS, "reference": {"distinct": "many", "empty": 2}}},
    ],
)
def test_dataset_views(version: dict[str, Any]) -> None:
    from promptopt.datasets import uploads, views
    from promptopt.datasets.models import Dataset, DatasetCreated, DatasetPage, DatasetVersion, UploadTarget

    assert_publishes(DatasetVersion, views.version_dict(version))
    assert_publishes(Dataset, views.dataset_dict(DATASET, [version, VERSION]))
    assert_publishes(Dataset, views.dataset_dict({**DATASET, "latest_version": None}))
    assert_publishes(DatasetPage, {"items": [views.dataset_dict(DATASET)], "next_page_token": None})
    upload = uploads.upload_view("https://u", {"Content-Type": "text/csv"}, AT, 1024, "gs://b/o")
    assert_publishes(UploadTarget, upload)
    assert_publishes(DatasetCreated, uploads.created_view(DATASET, [version], version, upload))
    assert_publishes(DatasetCreated, uploads.created_view(DATASET, [version], version, None))


def test_dataset_row_views() -> None:
    from promptopt.datasets import catalog, rows, views
    from promptopt.datasets.models import (
        DatasetGetQuery,
        DatasetListQuery,
        DatasetRow,
        DatasetSample,
        RowPage,
        RowsQuery,
        SampleQuery,
    )

    row = views.row_dict({"row": 4, "line": 5, "inputs": {"q": "x"}, "reference": None, "key": "k"}, "test")
    assert_publishes(DatasetRow, row)
    assert_publishes(RowPage, {"items": [row], "next_page_token": "t", "dataset_id": "ds_x", "version": 1})
    assert_publishes(
        DatasetSample, {"dataset_id": "ds_x", "version": 1, "split": None, "seed": 0, "rows": [row]}
    )
    for defaults, model in (
        (catalog.GetDefaults(), DatasetGetQuery),
        (catalog.ListDefaults(), DatasetListQuery),
        (rows.RowsDefaults(), RowsQuery),
        (rows.SampleDefaults(), SampleQuery),
    ):
        assert defaults._asdict() == model().model_dump()
        assert list(defaults._asdict()) == list(model.model_fields)


def test_job_scores_view() -> None:
    from promptopt.batch import scores
    from promptopt.batch.read_models import JobScores, MetricRowScores

    plain = scores.metric_scores(None, {"name": "exact_match"}, {"rows": [0, 1], "values": [1, None]})
    assert_publishes(MetricRowScores, plain)
    judged = scores.metric_scores(
        None,
        {"name": "llm_judge", "params": {"rubric": "r"}},
        {"rows": [0], "values": [0], "judge_errors": [{"row": 0, "code": "x", "message": "m"}]},
    )
    assert_publishes(MetricRowScores, judged)
    assert judged["judge_error_count"] == 1
    page = {
        "job_id": "bj_x",
        "model": "sim:default",
        "prompt": None,
        "source": {"type": "inline", "dataset_id": None, "dataset_version": None, "split": None},
        "partial": False,
        "metrics": [plain, judged],
    }
    assert_publishes(JobScores, page)


EXPERIMENT = {
    "experiment_id": "ex_0123456789abcdef0123", "name": "Q", "name_lower": "q", "description": "",
    "mode": "optimize", "prompt": {"prompt_id": "pr_1", "version": 1},
    "dataset": {"dataset_id": "ds_1", "version": 2},
    "target_model": "sim:default", "optimizer_model": "sim:optimizer",
    "metric": {"name": "exact_match", "params": {}}, "secondary_metrics": [{"name": "length", "params": {}}],
    "optimizer": {"strategy": "auto", "max_iterations": 3}, "budget": {"max_calls": None},
    "promote_label": None, "schedule": None, "regression": None, "temperature": 0, "max_tokens": 256,
    "created_at": AT, "updated_at": AT, "created_by": "alice", "tenant": "t",
}  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        EXPERIMENT,
        {
            **EXPERIMENT,
            "schedule": {"cron": "0 * * * *", "timezone": "UTC", "enabled": True},
            "regression": {"label": "production"},
            "promote_label": "candidate",
            "active_run_id": "run_1",
            "last_run_id": "run_1",
            "last_run_status": "running",
            "runs": 4,
            "next_run_at": AT,
        },
    ],
)
def test_experiment_view(data: dict[str, Any]) -> None:
    from promptopt.experiments import catalog
    from promptopt.experiments.models import Estimate, EstimateTerm, ExperimentListQuery
    from promptopt.experiments.view_models import ExperimentCreated, ExperimentPage, ExperimentView

    view = catalog.view_dict(data)
    assert_publishes(ExperimentView, view)
    assert_publishes(ExperimentPage, {"items": [view], "next_page_token": None})
    term = EstimateTerm(step="baseline", calls=40, formula="40 validation rows")
    estimate = Estimate(
        task_calls=40, optimizer_calls=3, input_tokens=900, output_tokens=120, cost_usd=0.25,
        terms=[term], within_budget=True, notes=["n"],
    )  # fmt: skip
    assert_publishes(
        ExperimentCreated, catalog.created_dict({**data, "estimate": estimate.model_dump(mode="json")})
    )
    assert catalog.ListDefaults()._asdict() == ExperimentListQuery().model_dump()
    assert list(catalog.ListDefaults()._asdict()) == list(ExperimentListQuery.model_fields)


def test_run_metrics_view() -> None:
    from promptopt.experiments import engine, run_view
    from promptopt.experiments.models import MetricsQuery
    from promptopt.experiments.view_models import RunMetrics

    assert run_view.BASELINE == engine.BASELINE
    assert run_view.MetricsDefaults()._asdict() == MetricsQuery().model_dump()
    experiment = {"target_model": "sim:default", "optimizer_model": "gemini:x"}
    assert_publishes(RunMetrics, run_view.metrics_dict("ex_1", experiment, None, None))
    cands = {
        engine.BASELINE: {
            "iteration": 0,
            "accept": {"mean": 0.25, "ci_low": 0.1, "ci_high": 0.4, "n": 32},
            "version": 1,
            "tokens_per_row": 12,
        },
        "c001_00": {
            "iteration": 1,
            "strategy": "reflective",
            "parent": engine.BASELINE,
            "rung_means": [0.5, 1],
            "secondary": {"length": 3},
            "status": "screened out",
        },
        "c001_01": {
            "iteration": 1,
            "strategy": "history",
            "accepted": True,
            "version": 2,
            "verdict": "accepted",
            "accept": {"mean": 0.75},
        },
    }
    run = {
        "status": "completed",
        "state": {"cands": cands, "incumbent": "c001_01"},
        "baseline_test": {"mean": 0.2, "ci_low": 0.1, "ci_high": 0.3, "n": 50},
        "lift": {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 50},
        "usage": {"task_calls": 100, "optimizer_calls": 4},
    }
    view = run_view.metrics_dict("ex_1", experiment, "run_1", run)
    assert_publishes(RunMetrics, view)
    assert [len(i["candidates"]) for i in view["iterations"]] == [1, 2]
    assert view["best_version"] == 2


def test_the_readiness_report_is_a_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptopt.access import readiness
    from promptopt.access.models import Check, Readiness

    def down() -> str | None:
        raise ConnectionError("refused")

    checks = {"firestore": lambda: None, "pubsub": lambda: "skipped: no topic is configured", "tasks": down}
    monkeypatch.setattr(readiness, "CHECKS", checks)
    report = readiness.readiness()
    assert_publishes(Readiness, report)
    for check in report["checks"]:
        assert_publishes(Check, check)
    assert report["status"] == "degraded"
    assert [(c["service"], c["status"], c["detail"]) for c in report["checks"]] == [
        ("firestore", "ok", None),
        ("pubsub", "skipped", "skipped: no topic is configured"),
        ("tasks", "failed", "ConnectionError"),
    ]
    monkeypatch.setattr(readiness, "CHECKS", {"firestore": lambda: None})
    assert readiness.readiness()["status"] == "ready"


def test_a_token_answer_publishes_the_token_model() -> None:
    assert_publishes(TokenResponse, exchange.token_view("eyJ.a.b", 3600, "t", "viewer"))


M = TypeVar("M", bound=BaseModel)


def strictly_valid(model: type[M], body: Any) -> M | None:
    """The body as `model` validates it in strict mode (as `Call.body` does), or None if invalid."""
    try:
        return model.model_validate(body, strict=True)
    except ValueError:
        return None


@pytest.mark.parametrize(
    "body",
    [
        {"api_key": "pok_0123456789abcdef_secret"},
        {"api_key": "x"},
        {"api_key": "é" * 200},  # characters, not bytes, are counted
        {"api_key": "x" * 201},
        {"api_key": ""},
        {"api_key": 12},
        {"api_key": None},
        {"api_key": ["pok_1"]},
        {"api_key": "pok_1", "tenant": "t"},
        {"key": "pok_1"},
        {},
        None,
        ["pok_1"],
        "pok_1",
    ],
)
def test_plain_key_agrees_with_the_token_request_model(body: Any) -> None:
    found = exchange.plain_key(body)
    request = strictly_valid(TokenRequest, body)
    if request is None:
        assert found is None  # an invalid body always reaches the model, which words the 400
        return
    assert found == request.api_key  # every valid body here is plainly valid


@pytest.mark.parametrize(
    "body",
    [
        {"name": "ci", "role": "viewer"},
        {"name": "n" * 100, "role": "admin", "expires_in_days": 365},
        {"name": "é" * 100, "role": "editor", "expires_in_days": 1},
        {"name": "ci nightly", "role": "editor", "expires_in_days": None},
        {"name": "n" * 101, "role": "viewer"},
        {"name": "", "role": "viewer"},
        {"name": " ci ", "role": "viewer"},  # the model strips it: not plainly valid
        {"name": "ci\u3000", "role": "viewer"},
        {"name": "ci", "role": "owner"},
        {"name": "ci", "role": ["viewer"]},
        {"name": "ci", "role": "viewer", "expires_in_days": 0},
        {"name": "ci", "role": "viewer", "expires_in_days": 366},
        {"name": "ci", "role": "viewer", "expires_in_days": True},
        {"name": "ci", "role": "viewer", "expires_in_days": 30.0},
        {"name": "ci", "role": "viewer", "expires_in_days": "30"},
        {"name": "ci", "role": "viewer", "tenant": "t"},
        {"name": 7, "role": "viewer"},
        {"role": "viewer"},
        {"name": "ci"},
        None,
        [],
    ],
)
def test_plain_new_key_agrees_with_the_api_key_create_model(body: Any) -> None:
    found = keys.plain_new_key(body)
    request = strictly_valid(ApiKeyCreate, body)
    if request is None:
        assert found is None  # an invalid body always reaches the model, which words the 400
        return
    if found is not None:
        assert found == keys.NewKey(request.name, request.role, request.expires_in_days)
    else:
        assert request.name != body["name"]  # only a name the model strips is left to it


@pytest.mark.parametrize(
    "body",
    [
        {"role": "viewer"},
        {"role": "admin", "email": "ada@example.com"},
        {"role": "editor", "email": None},
        {"role": "editor", "email": "e" * 320},
        {"role": "editor", "email": "e" * 321},
        {"role": "editor", "email": ""},
        {"role": "owner"},
        {"role": "Admin"},
        {"role": 3},
        {"role": ["viewer"]},
        {"role": "viewer", "email": 7},
        {"role": "viewer", "tenant": "t"},
        {"email": "ada@example.com"},
        {},
        None,
        [],
        "viewer",
    ],
)
def test_plain_member_role_agrees_with_the_member_role_model(body: Any) -> None:
    found = members.plain_member_role(body)
    request = strictly_valid(MemberRole, body)
    if request is None:
        assert found is None  # an invalid body always reaches the model, which words the 400
        return
    assert found == (request.role, request.email)  # every valid body here is plainly valid


@pytest.mark.parametrize(
    "body",
    [
        {"version": 1},
        {"version": 2**31 - 1},
        {"version": 2**31},
        {"version": 0},
        {"version": -3},
        {"version": True},
        {"version": 2.0},
        {"version": "2"},
        {"version": None},
        {"version": 2, "label": "prod"},
        {},
        None,
        [2],
    ],
)
def test_plain_label_version_agrees_with_the_label_set_model(body: Any) -> None:
    from promptopt.prompts.models import LabelSet

    found = prompts.plain_label_version(body)
    request = strictly_valid(LabelSet, body)
    if request is None:
        assert found is None  # an invalid body always reaches the model, which words the 400
        return
    assert found == request.version  # every valid body here is plainly valid


@pytest.mark.parametrize("ref", [None, {"prompt_id": "pr_0123456789abcdef0123", "version": 3}])
def test_a_completion_publishes_the_completion_result_model(ref: dict[str, Any] | None) -> None:
    from promptopt.inference.complete import result_dict
    from promptopt.inference.models import CompletionResult
    from promptopt.llm.types import Completion, Usage

    completion = Completion(
        text="4", usage=Usage(input_tokens=12, output_tokens=1), cost_usd=0.001234567891,
        latency_s=0.2504, model="gemini:gemini-2.5-flash", finish_reason="STOP",
    )  # fmt: skip
    assert_publishes(CompletionResult, result_dict(completion, ref, simulated=False))
    # Below 1e-4 the standard library writes an exponent (1.235e-05) where pydantic does not: the
    # same JSON number.
    tiny = result_dict(completion._replace(cost_usd=0.000012345678), ref, simulated=True)
    written = json.loads(json.dumps(tiny, default=json_default))
    assert written == json.loads(CompletionResult.model_validate(tiny).model_dump_json())


def test_stored_optimizer_settings_are_read_as_the_model_would() -> None:
    from promptopt.experiments import start
    from promptopt.experiments.models import OptimizerSettings
    from promptopt.experiments.plan import Sizes, make_plan

    assert set(OptimizerSettings.model_fields) == start.OPTIMIZER_FIELDS
    stored = OptimizerSettings(max_iterations=7, minibatch_size=9, validation_size=50).model_dump()
    assert start.stored_settings(stored) == stored
    partial = {k: v for k, v in stored.items() if k != "max_demos"}  # stored before max_demos existed
    assert start.stored_settings(partial) == {**partial, "max_demos": OptimizerSettings().max_demos}
    splits = {"train": 40, "validation": 30, "test": 200}
    model = OptimizerSettings.model_validate(stored)
    assert make_plan(Sizes.of(stored), splits) == make_plan(model, splits)
