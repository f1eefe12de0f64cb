"""`promptopt batch ...` through `main(argv)` against a small in-process fake of the batch API.

The fake speaks the contract with the library's own models: request bodies are validated as the
real functions validate them (BatchCreate, EvaluationCreate, ResultsQuery) and every answer is
built from the response models (BatchJob, ResultsPage). A job advances a few rows per GET, so
`--wait` sees it run, and ends the way a test asks (completed, failed, budget, cancelled).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from pydantic import BaseModel, ValidationError

from promptopt.batch.models import (
    MAX_INLINE_ROWS,
    BatchCreate,
    BatchJob,
    BatchResultRow,
    Budget,
    EvaluationCreate,
    EvaluationInfo,
    Progress,
    PromptPin,
    ResultsPage,
    ResultsQuery,
    SourceInfo,
    Usage,
)
from promptopt.cli import batch as cli_batch
from promptopt.cli import client as cli_client
from promptopt.cli.main import main
from promptopt.evaluation.models import MetricSummary

Reply = tuple[int, dict[str, str], bytes]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DATASETS = {"ds_ready": {"train": 30, "validation": 10, "test": 10}}
NOT_READY = "ds_pending"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _json(model: BaseModel | dict[str, Any], status: int = 200) -> Reply:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


def _problem(status: int, detail: str, code: str) -> Reply:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail, "code": code}
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()


@dataclass
class Job:
    body: BatchCreate
    job_id: str
    total: int
    evaluation: bool
    done: int = 0
    failed: int = 0
    status: str = "running"
    polls: int = 0
    evaluated: bool = False


@dataclass
class FakeBatch:
    """The batch API in memory; `ending` decides how the next job ends."""

    requests: list[Recorded] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    replies: dict[str, Reply] = field(default_factory=dict)  # by Idempotency-Key
    api_failures: list[int] = field(default_factory=list)
    rows_per_poll: int = 20
    ending: str = "completed"  # completed | failed | budget_exhausted | never

    def api(self, rec: Recorded) -> Reply:
        self.requests.append(rec)
        if self.api_failures:
            return _problem(self.api_failures.pop(0), "busy", "busy")
        key = rec.headers.get("idempotency-key")
        if key in self.replies:
            status, headers, payload = self.replies[key]
            return status, {**headers, "Idempotent-Replayed": "true"}, payload
        try:
            reply = self._route(rec)
        except ValidationError as exc:
            return _problem(400, str(exc.errors()[0]["msg"]), "validation_failed")
        if key and rec.method == "POST":
            self.replies[key] = reply
        return reply

    def _route(self, rec: Recorded) -> Reply:
        parts = [unquote(p) for p in rec.path.removeprefix("/api/v1/").split("/")]
        match rec.method, parts:
            case "POST", ["inference", "batch"]:
                return self._create(BatchCreate.model_validate_json(rec.body), evaluation=False)
            case "POST", ["inference", "evaluate"]:
                return self._create(EvaluationCreate.model_validate_json(rec.body), evaluation=True)
            case "GET", ["inference", "batch", job_id]:
                if job_id not in self.jobs:
                    return _problem(404, f"batch job {job_id} not found", "job_not_found")
                return _json(self._advance(self.jobs[job_id]))
            case "GET", ["inference", "batch", job_id, "results"]:
                return self._results(job_id, ResultsQuery.model_validate(rec.query))
            case "POST", ["inference", "batch", job_id, "cancel"]:
                job = self.jobs[job_id]
                if job.status not in ("running", "cancelled"):
                    return _problem(
                        409,
                        f"batch job {job_id} is {job.status}; only queued or running jobs",
                        "job_not_cancellable",
                    )
                job.status = "cancelled"
                return _json(self._view(job))
        return _problem(404, f"no route {rec.path}", "route_not_found")

    def _create(self, body: BatchCreate, *, evaluation: bool) -> Reply:
        if body.dataset is not None:
            if body.dataset.dataset_id == NOT_READY:
                return _problem(409, "dataset has no ready version yet", "dataset_not_ready")
            counts = DATASETS.get(body.dataset.dataset_id)
            if counts is None:
                return _problem(404, f"dataset {body.dataset.dataset_id} not found", "dataset_not_found")
            total = counts[body.dataset.split] if body.dataset.split else sum(counts.values())
        else:
            total = len(body.rows or [])
        job_id = f"bj_{len(self.jobs) + 1:020x}"
        job = Job(body=body, job_id=job_id, total=total, evaluation=evaluation)
        self.jobs[job_id] = job
        return _json(self._view(job), 202)

    def _advance(self, job: Job) -> BatchJob:
        job.polls += 1
        if job.status == "running" and self.ending != "never":
            job.done = min(job.total, job.done + self.rows_per_poll)
            job.failed = min(job.done, 1)
            if self.ending == "budget_exhausted" and job.done >= job.total // 2:
                job.status = "budget_exhausted"
            elif self.ending == "failed" and job.done == job.total:
                job.status = "failed"
            elif job.done == job.total:
                job.status = "evaluating" if job.evaluation else "completed"
        elif job.status == "evaluating" or (job.status == "budget_exhausted" and job.evaluation):
            if job.evaluated:
                job.status = "completed" if job.status == "evaluating" else job.status
            job.evaluated = True  # the metrics show on the poll after the next
        return self._view(job)

    def _view(self, job: Job) -> BatchJob:
        body = job.body
        evaluation = None
        if job.evaluation:
            scored = job.status == "completed" or (job.status == "budget_exhausted" and job.evaluated)
            metrics = [
                MetricSummary(name=m.name, mean=0.5, ci_low=0.3, ci_high=0.7, n=job.done)
                for m in (body.metrics if isinstance(body, EvaluationCreate) else [])
            ]
            evaluation = EvaluationInfo(
                status="completed" if scored else "pending",
                metrics=metrics if scored else [],
                n=job.done if scored else None,
                failed_rows=job.failed if scored else None,
                partial=job.done < job.total,
            )
        source = (
            SourceInfo(
                type="dataset",
                dataset_id=body.dataset.dataset_id,
                dataset_version=1,
                split=body.dataset.split,
            )
            if body.dataset
            else SourceInfo(type="inline")
        )
        final = job.status in ("completed", "failed", "cancelled", "budget_exhausted")
        return BatchJob(
            job_id=job.job_id,
            kind="evaluation" if job.evaluation else "batch",
            status=job.status,
            model=body.model or "sim:default",
            prompt=PromptPin(prompt_id=body.prompt_id, version=body.version or 3) if body.prompt_id else None,
            source=source,
            chunk_size=body.chunk_size or 50,
            chunks=max(1, -(-job.total // (body.chunk_size or 50))),
            concurrency=body.concurrency or 32,
            cache=body.cache,
            budget=body.budget or Budget(),
            progress=Progress(
                total=job.total,
                succeeded=job.done - job.failed,
                failed=job.failed,
                pending=job.total - job.done,
                cache_hits=job.done // 4,
            ),
            usage=Usage(calls=job.done, input_tokens=10 * job.done, output_tokens=5 * job.done, cost_usd=0.0),
            stop_reason={"budget_exhausted": "budget:max_calls", "cancelled": "cancelled"}.get(job.status),
            error={"code": "evaluation_failed", "message": "the metric broke"}
            if job.status == "failed"
            else None,
            evaluation=evaluation,
            created_at=NOW,
            updated_at=NOW,
            finished_at=NOW + timedelta(seconds=4.2) if final else None,
            created_by="tester",
        )

    def _results(self, job_id: str, query: ResultsQuery) -> Reply:
        job = self.jobs[job_id]
        rows = [
            BatchResultRow(
                row=i,
                status="failed" if i == 0 else "succeeded",
                output=None if i == 0 else f"answer {i} #### {i}",
                error={"code": "safety_block", "message": "refused"} if i == 0 else None,
                inputs={"question": f"what is {i}?"},
                reference=str(i),
                cached=i % 4 == 0,
                input_tokens=10,
                output_tokens=5,
                cost_usd=0.0,
                latency_ms=3,
            )
            for i in range(job.done)
        ]
        if query.status:
            rows = [r for r in rows if r.status == query.status]
        start = int(query.page_token or 0)
        size = query.page_size or 20
        token = str(start + size) if start + size < len(rows) else None
        return _json(ResultsPage(job_id=job_id, items=rows[start : start + size], next_page_token=token))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        rec = Recorded(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        status, headers, payload = self.server.fake.api(rec)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeBatch) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@dataclass
class Cli:
    url: str
    fake: FakeBatch
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--api-url", self.url, "--token", "secret-token", *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def posts(self) -> list[Recorded]:
        return [r for r in self.fake.requests if r.method == "POST"]


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROMPTOPT_API_URL", "PROMPTOPT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_client, "RETRY_BACKOFF_S", (0.0,))
    monkeypatch.setattr(cli_batch, "POLL_INTERVALS_S", (0.0,))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    fake = FakeBatch()
    server = _Server(fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Cli(f"http://127.0.0.1:{server.server_port}", fake, capsys)
    finally:
        server.shutdown()
        server.server_close()


def rows_file(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


# -- run: the request --------------------------------------------------------------------------------


def test_run_over_a_dataset_split_sends_the_body_and_a_key(cli: Cli) -> None:
    code, out, err = cli(
        "batch", "run", "--output-prompt", "Q: {question}", "--system-prompt", "Be brief.",
        "--dataset", "ds_ready", "--dataset-version", "1", "--split", "test", "--model", "sim:default",
        "--temperature", "0.5", "--max-tokens", "64", "--budget-calls", "100", "--budget-tokens", "5000",
        "--budget-usd", "0.5", "--chunk-size", "5", "--concurrency", "4", "--no-cache",
    )  # fmt: skip
    assert code == 0, err
    (post,) = cli.posts()
    assert post.path == "/api/v1/inference/batch"
    assert post.headers["idempotency-key"]
    assert post.headers["authorization"] == "Bearer secret-token"
    assert post.json() == {
        "output_prompt": "Q: {question}",
        "system_prompt": "Be brief.",
        "dataset": {"dataset_id": "ds_ready", "version": 1, "split": "test"},
        "model": "sim:default",
        "temperature": 0.5,
        "max_tokens": 64,
        "chunk_size": 5,
        "concurrency": 4,
        "cache": False,
        "budget": {"max_calls": 100, "max_tokens": 5000, "max_cost_usd": 0.5},
    }
    assert "bj_" in out
    assert "dataset ds_ready version 1, test split" in out
    assert "simulator" in out
    assert "promptopt batch get bj_" in err
    assert "--wait" in err


def test_a_stored_prompt_by_label_or_version(cli: Cli) -> None:
    assert (
        cli("batch", "run", "--prompt-id", "pr_1", "--label", "production", "--dataset", "ds_ready")[0] == 0
    )
    assert cli("batch", "run", "--prompt-id", "pr_1", "--version", "2", "--dataset", "ds_ready")[0] == 0
    first, second = (p.json() for p in cli.posts())
    assert first == {"prompt_id": "pr_1", "label": "production", "dataset": {"dataset_id": "ds_ready"}}
    assert second == {"prompt_id": "pr_1", "version": 2, "dataset": {"dataset_id": "ds_ready"}}


def test_inputs_file_rows_flat_or_nested(cli: Cli, tmp_path: Path) -> None:
    source = rows_file(
        tmp_path / "rows.jsonl",
        [
            {"question": "1+1?", "reference": "2"},
            {"inputs": {"question": "2+2?"}, "reference": 4},
            {"question": "n?", "n": 3, "flag": True, "nothing": None},
        ],
    )
    code, out, err = cli("batch", "run", "--output-prompt", "Q: {question}", "--inputs", str(source))
    assert code == 0, err
    assert cli.posts()[0].json()["rows"] == [
        {"inputs": {"question": "1+1?"}, "reference": "2"},
        {"inputs": {"question": "2+2?"}, "reference": "4"},
        {"inputs": {"question": "n?", "n": "3", "flag": "true", "nothing": ""}},
    ]
    assert "inline rows" in out


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["not json"], "rows.jsonl:1: not JSON"),
        ([[1, 2]], "rows.jsonl:1: expected a JSON object"),
        ([{"inputs": {"q": "x"}, "answer": "y"}], "unexpected field(s) answer"),
        ([{"reference": "only"}], "rows.jsonl:1: the row has no template variables"),
    ],
)
def test_bad_inputs_files_are_refused_before_any_request(
    cli: Cli, tmp_path: Path, lines: list[Any], message: str
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--inputs", str(path))
    assert code == 2
    assert message in err
    assert cli.fake.requests == []


def test_too_many_inline_rows_point_at_datasets(cli: Cli, tmp_path: Path) -> None:
    assert cli_batch.MAX_INLINE_ROWS == MAX_INLINE_ROWS
    source = rows_file(tmp_path / "big.jsonl", [{"q": str(i)} for i in range(MAX_INLINE_ROWS + 1)])
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--inputs", str(source))
    assert code == 2
    assert f"at most {MAX_INLINE_ROWS}" in err
    assert "promptopt datasets create" in err
    assert cli.fake.requests == []


def test_a_body_above_the_api_cap_is_refused_locally(cli: Cli, tmp_path: Path) -> None:
    from promptopt.config import Settings

    assert Settings().max_body_bytes == cli_batch.MAX_BODY_BYTES
    source = rows_file(tmp_path / "long.jsonl", [{"q": "x" * 40_000} for _ in range(30)])
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--inputs", str(source))
    assert code == 2
    assert "above the API's" in err
    assert cli.fake.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prompt-id", "pr_1", "--output-prompt", "Q: {q}", "--dataset", "ds_ready"], "not both"),
        (
            ["--output-prompt", "Q: {q}", "--version", "2", "--dataset", "ds_ready"],
            "give them with --prompt-id",
        ),
        (["--dataset", "ds_ready"], "give --prompt-id ID or an inline --output-prompt"),
        (["--output-prompt", "Q: {q}", "--inputs", "x.jsonl", "--split", "test"], "apply with --dataset"),
    ],
)
def test_usage_errors(cli: Cli, argv: list[str], message: str) -> None:
    code, _, err = cli("batch", "run", *argv)
    assert code == 2
    assert message in err
    assert cli.fake.requests == []


def test_argparse_refuses_what_it_can(cli: Cli) -> None:
    assert cli("batch", "run", "--output-prompt", "Q: {q}")[0] == 2  # no rows
    assert cli("batch", "run", "--output-prompt", "Q", "--dataset", "d", "--inputs", "f")[0] == 2
    assert cli("batch", "run", "--output-prompt", "Q", "--dataset", "d", "--temperature", "3")[0] == 2
    assert cli("batch", "run", "--prompt-id", "p", "--version", "1", "--label", "x", "--dataset", "d")[0] == 2
    assert cli("batch", "evaluate", "--output-prompt", "Q", "--dataset", "d")[0] == 2  # no --metric
    assert cli.fake.requests == []


def test_api_refusals_exit_2_with_the_problem(cli: Cli) -> None:
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_missing")
    assert code == 2
    assert "dataset_not_found" in err
    assert "HTTP 404" in err
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--dataset", NOT_READY)
    assert code == 2
    assert "dataset_not_ready" in err
    assert "HTTP 409" in err


def test_a_retried_create_reuses_its_idempotency_key(cli: Cli) -> None:
    cli.fake.api_failures = [503, 503]
    code, _, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready")
    assert code == 0, err
    posts = cli.posts()
    assert len(posts) == 3
    assert len({p.headers["idempotency-key"] for p in posts}) == 1
    assert len(cli.fake.jobs) == 1
    code, _, _ = cli(
        "batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--idempotency-key", "k-1"
    )
    assert code == 0
    assert cli.posts()[-1].headers["idempotency-key"] == "k-1"


# -- --wait ----------------------------------------------------------------------------------------------


def test_run_wait_shows_progress_then_a_summary(cli: Cli) -> None:
    code, out, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--wait")
    assert code == 0, err
    # Off a terminal: the first state, then (polls within LOG_EVERY_S are not logged) the last.
    assert [line for line in err.splitlines() if line.startswith("bj_")] == [
        "bj_00000000000000000001 running: 20/50 rows (1 failed), 20 calls, 5 cache hits, $0.000000",
        "bj_00000000000000000001 completed: 50/50 rows (1 failed), 50 calls, 12 cache hits, $0.000000",
    ]
    assert "started bj_00000000000000000001 on the offline simulator: 50 rows" in err
    assert "answers: promptopt batch results bj_00000000000000000001" in err
    assert "status:      completed" in out
    assert "50 of 50 done: 49 succeeded, 1 failed" in out
    assert "took 4.2s" in out
    assert "not a language model" in out


def test_evaluate_wait_prints_the_metrics_with_their_intervals(cli: Cli) -> None:
    code, out, err = cli(
        "batch", "evaluate", "--prompt-id", "pr_1", "--dataset", "ds_ready", "--split", "test",
        "--metric", "numeric", "--metric", "exact_match", "--param", "numeric.tolerance=0.5", "--wait",
    )  # fmt: skip
    assert code == 0, err
    (post,) = cli.posts()
    assert post.path == "/api/v1/inference/evaluate"
    assert post.json()["metrics"] == [
        {"name": "numeric", "params": {"tolerance": 0.5}},
        {"name": "exact_match", "params": {}},
    ]
    assert "evaluating (every row is done; the answers are scored next)" in err
    assert "METRIC       MEAN   95% CI          N" in out
    assert "numeric      0.500  [0.300, 0.700]  10" in out
    assert "completed over 10 rows (1 failed rows score 0)" in out


def test_a_model_backed_metric_is_refused_by_the_api(cli: Cli) -> None:
    code, _, err = cli(
        "batch", "evaluate", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--metric", "llm_judge"
    )
    assert code == 2
    assert "unknown metric 'llm_judge'" in err


def test_a_failed_job_exits_1(cli: Cli) -> None:
    cli.fake.ending = "failed"
    code, out, err = cli("batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--wait")
    assert code == 1
    assert "status:      failed" in out
    assert "failed: the metric broke (evaluation_failed)" in err


def test_a_budget_stop_exits_0_and_says_so_after_the_metrics_arrive(cli: Cli) -> None:
    cli.fake.ending = "budget_exhausted"
    code, out, err = cli(
        "batch", "evaluate", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--metric", "numeric",
        "--budget-calls", "20", "--wait",
    )  # fmt: skip
    assert code == 0, err
    assert "stopped at its budget (max_calls), as asked: 40 of 50 rows ran" in err
    assert "numeric  0.500  [0.300, 0.700]  40" in out  # waited for the evaluation step
    assert "partial: only the rows that ran were scored" in out
    assert "stopped:" in out
    assert "budget:max_calls" in out


def test_a_cancelled_job_exits_0_and_says_so(cli: Cli) -> None:
    cli.fake.ending = "never"
    code, _, err = cli(
        "batch", "evaluate", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--metric", "numeric"
    )
    assert code == 0, err
    (job_id,) = cli.fake.jobs
    code, out, _ = cli("batch", "cancel", job_id)
    assert code == 0
    assert out.strip() == (
        f"{job_id} cancelled: 0 of 50 rows have a result (kept); chunks not yet run make no model calls"
    )
    code, out, err = cli("batch", "get", job_id, "--wait")
    assert code == 0
    assert "was cancelled: 0 of 50 rows ran" in err
    assert "status:      cancelled" in out
    assert "evaluation:  not run (the job was cancelled)" in out
    again = cli("batch", "cancel", job_id)
    assert again[0] == 0  # cancelling twice is fine


def test_cancelling_a_finished_job_is_a_409(cli: Cli) -> None:
    assert cli("batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--wait")[0] == 0
    (job_id,) = cli.fake.jobs
    code, _, err = cli("batch", "cancel", job_id)
    assert code == 2
    assert "job_not_cancellable" in err
    assert "HTTP 409" in err


def test_wait_json_prints_one_document_of_the_final_job(cli: Cli) -> None:
    code, out, err = cli(
        "--json", "batch", "evaluate", "--output-prompt", "Q: {q}", "--dataset", "ds_ready",
        "--metric", "numeric", "--wait",
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "completed"
    assert job["evaluation"]["metrics"][0]["ci_low"] == 0.3
    cli.fake.ending = "failed"
    code, out, _ = cli(
        "--json", "batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--wait"
    )
    assert code == 1
    assert json.loads(out)["status"] == "failed"


def test_without_wait_json_is_the_created_job(cli: Cli) -> None:
    code, out, _ = cli("--json", "batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready")
    assert code == 0
    assert json.loads(out)["status"] == "running"


def test_the_wait_times_out_with_exit_1_and_the_job_keeps_running(cli: Cli) -> None:
    cli.fake.ending = "never"
    code, _, err = cli(
        "batch",
        "run",
        "--output-prompt",
        "Q: {q}",
        "--dataset",
        "ds_ready",
        "--wait",
        "--wait-timeout",
        "0.001",
    )
    assert code == 1
    assert "keeps running" in err
    assert "promptopt batch get bj_00000000000000000001 --wait" in err


def test_progress_redraws_one_line_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    line = cli_batch.ProgressLine(stream)
    line.show("bj_1 running: 10/50 rows", "running", 1.0)
    line.show("bj_1 running: 9/50 rows", "running", 2.0)
    line.finish("bj_1 completed: 50/50 rows")
    text = stream.getvalue()
    assert "\n" not in text
    assert text.startswith("\rbj_1 running: 10/50 rows  1s")
    assert "\rbj_1 running: 9/50 rows  2s " in text  # padded over the longer line
    assert text.endswith("\r")


def test_progress_off_a_terminal_is_logged_now_and_then() -> None:
    now = [0.0]
    stream = io.StringIO()
    line = cli_batch.ProgressLine(stream, every_s=5.0, clock=lambda: now[0])
    line.show("a 1/9", "running", 0)
    now[0] = 1.0
    line.show("a 2/9", "running", 1)  # too soon: not logged
    line.show("a 9/9 evaluating", "evaluating", 1)  # a new status: logged at once
    now[0] = 7.0
    line.show("a 9/9 evaluating", "evaluating", 7)  # unchanged: not repeated
    line.finish("a 9/9 completed")
    assert stream.getvalue().splitlines() == ["a 1/9", "a 9/9 evaluating", "a 9/9 completed"]


# -- get, results ---------------------------------------------------------------------------------------


def test_get_shows_the_job_and_unknown_ids_are_404(cli: Cli, tmp_path: Path) -> None:
    cli("batch", "run", "--prompt-id", "pr_1", "--inputs", str(rows_file(tmp_path / "r.jsonl", [{"q": "1"}])))
    (job_id,) = cli.fake.jobs
    code, out, _ = cli("batch", "get", job_id)
    assert code == 0
    assert "pr_1 version 3" in out
    assert "inline rows" in out
    code, _, err = cli("batch", "get", "bj_nope")
    assert code == 2
    assert "job_not_found" in err


def test_results_pages_filters_and_collects(cli: Cli) -> None:
    cli("batch", "run", "--output-prompt", "Q: {q}", "--dataset", "ds_ready", "--wait")
    (job_id,) = cli.fake.jobs
    code, out, err = cli("batch", "results", job_id, "--page-size", "5")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ROW", "STATUS", "CACHED", "INPUT", "OUTPUT", "REFERENCE", "ERROR"]
    assert len(lines) == 6
    assert "safety_block" in lines[1]
    assert "answer 1 #### 1" in lines[2]
    assert f"more: promptopt batch results {job_id} --page-size 5 --page-token 5" in err
    code, out, _ = cli("--json", "batch", "results", job_id, "--all", "--page-size", "7")
    page = json.loads(out)
    assert [r["row"] for r in page["items"]] == list(range(50))
    assert page["next_page_token"] is None
    code, out, _ = cli("--json", "batch", "results", job_id, "--status", "failed")
    assert [r["row"] for r in json.loads(out)["items"]] == [0]
    assert [r.query for r in cli.fake.requests if r.path.endswith("/results")][-1] == {"status": "failed"}


# -- help -------------------------------------------------------------------------------------------------


def test_metric_help_lists_the_names_of_promptopt_evaluation(capsys: pytest.CaptureFixture[str]) -> None:
    from promptopt.evaluation import METRIC_NAMES, METRICS, MODEL_METRICS

    assert {"embedding_similarity", "llm_judge"} <= set(MODEL_METRICS)
    assert main(["evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in METRIC_NAMES:
        assert name in text
    assert "calling a model: embedding_similarity, llm_judge" in text
    assert main(["batch", "evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in METRICS:
        assert name in text
    assert "llm_judge" not in text.split("jobs score row by row")[0].split("--metric NAME")[-1]
