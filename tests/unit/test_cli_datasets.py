"""`promptopt datasets ...` through `main(argv)` against two small in-process fakes.

The fake API speaks the dataset contract with the library's own models (request bodies are
validated as the real functions validate them, answers are built from the response models) and
ingests files with the library's parser. The fake storage stands in for the signed-URL host: it
records each PUT (headers and bytes) and can answer with Cloud Storage's XML errors.
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

from promptopt.cli import client as cli_client
from promptopt.cli import datasets as cli_datasets
from promptopt.cli.main import main
from promptopt.datasets.files import IngestLimits, ParseOutcome, StatsAccumulator, parse
from promptopt.datasets.files.canonical import row_key
from promptopt.datasets.files.splits import assign_split, sample
from promptopt.datasets.models import (
    Dataset,
    DatasetCreate,
    DatasetCreated,
    DatasetPage,
    DatasetRow,
    DatasetSample,
    DatasetVersion,
    DatasetVersionCreate,
    RowPage,
    UploadTarget,
    VersionFailure,
)

Reply = tuple[int, dict[str, str], bytes]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
UPLOAD_HEADERS = {
    "Content-Type": "application/x-ndjson",
    "x-goog-content-length-range": "0,{max}",
    "x-goog-if-generation-match": "0",
}
EXPIRED_XML = (
    "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code><Message>Invalid argument."
    "</Message><Details>The provided token has expired. Request signature expired at: "
    "2026-01-02T03:19:05+00:00</Details></Error>"
)


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
class FakeDatasets:
    """The dataset API and the signed-URL storage host, in memory."""

    storage_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    puts: list[Recorded] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_failures: list[int] = field(default_factory=list)
    storage_failures: list[Reply] = field(default_factory=list)
    processing_polls: int = 2  # GETs that still see "processing" before the outcome shows
    max_bytes: int | None = None  # the deployment's cap on signed uploads
    replies: dict[str, Reply] = field(default_factory=dict)  # by Idempotency-Key

    # -- the API ------------------------------------------------------------------------------

    def api(self, rec: Recorded) -> Reply:
        self.requests.append(rec)
        if self.api_failures:
            status = self.api_failures.pop(0)
            return _problem(status, "busy", "busy")
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
            case "POST", ["datasets"]:
                return self._create(DatasetCreate.model_validate_json(rec.body))
            case "POST", ["datasets", ds, "versions"]:
                return self._new_version(ds, DatasetVersionCreate.model_validate_json(rec.body))
            case "GET", ["datasets"]:
                items = [self._dataset(ds, poll=False) for ds in reversed(self.datasets)]
                if "name" in rec.query:
                    items = [d for d in items if d.name == rec.query["name"]]
                start = int(rec.query.get("page_token") or 0)
                size = int(rec.query.get("page_size") or 20)
                token = str(start + size) if start + size < len(items) else None
                return _json(DatasetPage(items=items[start : start + size], next_page_token=token))
            case "GET", ["datasets", ds]:
                if ds not in self.datasets:
                    return _problem(404, f"dataset {ds} not found", "dataset_not_found")
                return _json(self._dataset(ds, poll=True))
            case "GET", ["datasets", ds, "sample"]:
                version, rows = self._rows(ds, rec.query)
                n, seed = int(rec.query.get("n", 10)), int(rec.query.get("seed", 0))
                chosen = sample(rows, n, seed, key=lambda r: row_key(r.model_dump()))  # type: ignore[arg-type]
                split = rec.query.get("split")
                answer = DatasetSample(dataset_id=ds, version=version, split=split, seed=seed, rows=chosen)
                return _json(answer)
            case "GET", ["datasets", ds, "rows"]:
                version, rows = self._rows(ds, rec.query)
                start = int(rec.query.get("page_token") or 0)
                size = int(rec.query.get("page_size") or 20)
                token = str(start + size) if start + size < len(rows) else None
                page = RowPage(
                    items=rows[start : start + size], next_page_token=token, dataset_id=ds, version=version
                )
                return _json(page)
            case "DELETE", ["datasets", ds]:
                if self.datasets.pop(ds, None) is None:
                    return _problem(404, f"dataset {ds} not found", "dataset_not_found")
                return 204, {}, b""
        return _problem(404, f"no route {rec.path}", "route_not_found")

    def _create(self, body: DatasetCreate) -> Reply:
        ds = f"ds_{len(self.datasets) + 1:020x}"
        self.datasets[ds] = {"body": body, "versions": []}
        return self._add_version(ds, body)

    def _new_version(self, ds: str, body: DatasetVersionCreate) -> Reply:
        if ds not in self.datasets:
            return _problem(404, f"dataset {ds} not found", "dataset_not_found")
        return self._add_version(ds, body)

    def _add_version(self, ds: str, body: DatasetCreate | DatasetVersionCreate) -> Reply:
        entry = self.datasets[ds]
        number = len(entry["versions"]) + 1
        data = body.inline_bytes()
        version: dict[str, Any] = {"version": number, "status": "pending", "polls": 0, "rows": []}
        version["origin"] = "inline" if data is not None else "signed_url"
        entry["versions"].append(version)
        upload = None
        if data is None:
            max_bytes = min(body.upload_max_bytes or 200 * 2**20, self.max_bytes or 2**40)
            headers = {k: v.format(max=max_bytes) for k, v in UPLOAD_HEADERS.items()}
            upload = UploadTarget(
                url=f"{self.storage_url}/upload/{ds}/v{number}?X-Goog-Signature=abc",
                headers=headers,
                expires_at=NOW + timedelta(minutes=15),
                max_bytes=max_bytes,
                object=f"gs://bucket/{ds}/v{number}/source.jsonl",
            )
        else:
            self._ingest(ds, version, data)
        created = DatasetCreated(
            dataset=self._dataset(ds, poll=False), version=self._version(ds, version), upload=upload
        )
        return _json(created, 201)

    def _ingest(self, ds: str, version: dict[str, Any], data: bytes) -> None:
        spec: DatasetCreate = self.datasets[ds]["body"]
        limits = IngestLimits(bad_row_policy=spec.bad_row_policy, max_bad_fraction=spec.max_bad_fraction)
        parsed = parse(io.BytesIO(data), fmt=spec.format, mapping=spec.mapping, limits=limits)
        stats = StatsAccumulator()
        rows = []
        for row in parsed:
            split = assign_split(row_key(row), spec.split_seed, spec.splits)
            stats.add(row, split)
            rows.append(DatasetRow(split=split, **row))
        outcome = parsed.outcome
        version.update(status="processing", bytes=len(data), outcome=outcome)
        if not outcome.failed:
            version["rows"] = sorted(rows, key=lambda r: ("train", "validation", "test").index(r.split))
            version["stats"] = stats.result()

    def _version(self, ds: str, version: dict[str, Any]) -> DatasetVersion:
        outcome: ParseOutcome | None = version.get("outcome")
        shown: dict[str, Any] = {"status": version["status"]}
        if outcome is not None and version["polls"] > self.processing_polls:  # ingestion is over
            shown = {
                "status": "failed" if outcome.failed else "ready",
                "rows_ok": outcome.rows_ok,
                "rows_bad": outcome.rows_bad,
                "bad_rows": outcome.bad_rows,
                "failure": VersionFailure(code="bad_rows", reason=outcome.failure_reason or "")
                if outcome.failed
                else None,
                "stats": None if outcome.failed else version.get("stats"),
            }
        return DatasetVersion(
            dataset_id=ds,
            version=version["version"],
            origin=version["origin"],
            format=self.datasets[ds]["body"].format,
            source=f"gs://bucket/{ds}/v{version['version']}/source.jsonl",
            created_at=NOW,
            updated_at=NOW,
            bytes=version.get("bytes"),
            **shown,
        )

    def _dataset(self, ds: str, *, poll: bool) -> Dataset:
        entry = self.datasets[ds]
        spec: DatasetCreate = entry["body"]
        if poll:
            for version in entry["versions"]:
                if version.get("outcome") is not None:
                    version["polls"] += 1
        versions = [self._version(ds, v) for v in reversed(entry["versions"])]
        ready = [v.version for v in versions if v.status == "ready"]
        return Dataset(
            dataset_id=ds,
            name=spec.name,
            description=spec.description,
            format=spec.format,
            mapping=spec.mapping,
            splits=spec.splits,
            split_seed=spec.split_seed,
            bad_row_policy=spec.bad_row_policy,
            max_bad_fraction=spec.max_bad_fraction,
            created_at=NOW,
            updated_at=NOW,
            created_by="tester",
            latest_version=max(ready) if ready else None,
            version_count=len(versions),
            versions=versions,
        )

    def _rows(self, ds: str, query: dict[str, str]) -> tuple[int, list[DatasetRow]]:
        versions = self.datasets[ds]["versions"]
        number = int(query.get("version") or max(v["version"] for v in versions if v["rows"]))
        rows: list[DatasetRow] = versions[number - 1]["rows"]
        if query.get("split"):
            rows = [r for r in rows if r.split == query["split"]]
        return number, rows

    # -- the storage host ------------------------------------------------------------------------

    def storage(self, rec: Recorded) -> Reply:
        self.puts.append(rec)
        if self.storage_failures:
            return self.storage_failures.pop(0)
        parts = urlsplit(rec.path).path.split("/")  # /upload/{ds}/v{n}
        ds, number = parts[2], int(parts[3][1:])
        self._ingest(ds, self.datasets[ds]["versions"][number - 1], rec.body)
        return 200, {}, b""


def _handler(route: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
            status, headers, payload = getattr(self.server.fake, route)(rec)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeDatasets, route: str) -> None:
        super().__init__(("127.0.0.1", 0), _handler(route))
        self.fake = fake


@dataclass
class Cli:
    url: str
    fake: FakeDatasets
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
    monkeypatch.setattr(cli_datasets, "POLL_INTERVALS_S", (0.0,))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    fake = FakeDatasets()
    servers = [_Server(fake, "api"), _Server(fake, "storage")]
    threads = [threading.Thread(target=s.serve_forever, args=(0.02,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    fake.storage_url = f"http://127.0.0.1:{servers[1].server_port}"
    try:
        yield Cli(f"http://127.0.0.1:{servers[0].server_port}", fake, capsys)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def qa_file(path: Path, rows: int = 20, *, bad_lines: tuple[int, ...] = ()) -> Path:
    lines = []
    for i in range(1, rows + 1):
        if i in bad_lines:
            lines.append(json.dumps({"q": f"question {i}"}))  # no "answer"
        else:
            lines.append(json.dumps({"q": f"question {i}", "answer": str(i % 7)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def big_file(path: Path, size: int) -> Path:
    """A valid JSONL file of at least `size` bytes."""
    line = json.dumps({"q": "x" * 1000, "answer": "y"}) + "\n"
    count = size // len(line) + 1
    path.write_text(
        "".join(json.dumps({"q": f"{i} " + "x" * 1000, "answer": "y"}) + "\n" for i in range(count))
    )
    return path


# -- create: inline or signed URL --------------------------------------------------------------------


def test_a_small_file_goes_inline_with_an_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    code, out, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--reference", "answer"
    )
    assert code == 0, err
    (post,) = cli.posts()
    assert post.path == "/api/v1/datasets"
    body = post.json()
    assert body["content"] == source.read_text(encoding="utf-8")
    assert "upload_max_bytes" not in body
    assert body["format"] == "jsonl"
    assert body["mapping"] == {"inputs": ["q"], "reference": "answer"}
    assert post.headers["idempotency-key"]
    assert post.headers["authorization"] == "Bearer secret-token"
    assert cli.fake.puts == []
    assert "ds_" in out
    assert "inline" in out
    assert "datasets get ds_" in err


def test_non_utf8_content_goes_base64(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "latin.csv"
    source.write_bytes("q,answer\ncaf\xe9,1\n".encode("latin-1"))
    code, _, err = cli("datasets", "create", str(source), "--name", "latin", "--input", "q")
    assert code == 0, err
    body = cli.posts()[0].json()
    assert body["format"] == "csv"
    assert "content" not in body
    assert body["content_base64"] == "cSxhbnN3ZXIKY2Fm6SwxCg=="


def test_a_large_file_is_put_to_the_signed_url_with_exactly_its_headers(cli: Cli, tmp_path: Path) -> None:
    source = big_file(tmp_path / "big.jsonl", cli_datasets.INLINE_MAX_BYTES + 10)
    size = source.stat().st_size
    code, out, err = cli(
        "datasets", "create", str(source), "--name", "big", "--input", "q", "--reference", "answer", "--wait"
    )
    assert code == 0, err
    body = cli.posts()[0].json()
    assert "content" not in body
    assert "content_base64" not in body
    assert body["upload_max_bytes"] == size
    (put,) = cli.fake.puts
    assert put.method == "PUT"
    assert put.path.startswith("/upload/ds_")
    assert put.body == source.read_bytes()
    assert put.headers["content-type"] == "application/x-ndjson"
    assert put.headers["x-goog-content-length-range"] == f"0,{size}"
    assert put.headers["x-goog-if-generation-match"] == "0"  # the URL writes once
    assert put.headers["content-length"] == str(size)
    assert "authorization" not in put.headers  # the bearer token never goes to storage
    assert "idempotency-key" not in put.headers
    assert "transfer-encoding" not in put.headers
    assert not any(r.method == "PUT" for r in cli.fake.requests)  # nothing PUT through the API
    # stderr is not a terminal here: one final progress line, no carriage returns
    assert "\r" not in err
    (bar,) = [line for line in err.splitlines() if line.startswith("uploading [")]
    assert "100%" in bar
    assert cli_datasets.human_bytes(size) in bar
    assert "/s" in bar
    assert "ready" in out
    assert "signed upload URL" in out


def test_via_forces_the_transfer(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 0, err
    assert "upload_max_bytes" in cli.posts()[0].json()
    assert len(cli.fake.puts) == 1


def test_progress_bar_redraws_in_place_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    ticks = iter([0.0, 0.0, 0.5, 0.55, 1.0, 2.0])
    stream = Tty()
    progress = cli_datasets.Progress(4 * 1024 * 1024, stream=stream, clock=lambda: next(ticks))
    progress.update(1024 * 1024)  # drawn
    progress.update(2 * 1024 * 1024)  # drawn
    progress.update(3 * 1024 * 1024)  # within 0.1 s of the last: skipped
    progress.update(4 * 1024 * 1024)  # drawn
    progress.finish()
    text = stream.getvalue()
    frames = text.split("\r")[1:]
    assert len(frames) == 4
    assert " 25%" in frames[0]
    assert " 75%" not in text
    assert frames[-1].endswith("\n")
    assert "4.0 MiB / 4.0 MiB  100%  2.0 MiB/s" in frames[-1]
    assert "[" + "#" * cli_datasets.Progress.WIDTH + "]" in frames[-1]


def test_the_wait_line_spins_on_a_terminal_and_prints_changes_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    spinner = cli_datasets.Spinner(tty)
    spinner.show("version 1: pending", 0.0)
    spinner.show("version 1: processing", 1.2)
    spinner.done()
    assert tty.getvalue().startswith("\r| version 1: pending  0s\r/ version 1: processing  1s")
    assert tty.getvalue().endswith("\r")
    plain = io.StringIO()
    spinner = cli_datasets.Spinner(plain)
    for status in ("pending", "pending", "processing", "processing"):
        spinner.show(f"version 1: {status}", 0.0)
    spinner.done()
    assert plain.getvalue() == "version 1: pending\nversion 1: processing\n"


def test_a_file_above_the_url_limit_is_refused_before_uploading(cli: Cli, tmp_path: Path) -> None:
    cli.fake.max_bytes = 100
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 2
    assert "above the 100 bytes" in err
    assert cli.fake.puts == []


# -- signed-URL failures ------------------------------------------------------------------------------


def test_an_expired_upload_url_is_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    cli.fake.storage_failures.append((400, {"Content-Type": "application/xml"}, EXPIRED_XML.encode()))
    source = big_file(tmp_path / "big.jsonl", cli_datasets.INLINE_MAX_BYTES + 10)
    code, _, err = cli("datasets", "create", str(source), "--name", "big", "--input", "q")
    assert code == 2
    assert len(cli.fake.puts) == 1  # a 400 is not retried
    assert "upload failed: the signed upload URL expired at 2026-01-02 03:19:05Z" in err
    assert "ExpiredToken" in err
    assert "The provided token has expired" in err
    assert f"promptopt datasets upload {source} ds_" in err
    assert "Traceback" not in err
    assert "<Error>" not in err
    assert "failed" in err.splitlines()[0]  # the bar's last line says it stopped


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (403, "SignatureDoesNotMatch", "refused the upload URL's signature"),
        (400, "EntityTooLarge", "larger than the upload URL allows"),
        (400, "MalformedSecurityHeader", "header the upload URL was signed with"),
        (403, "AccessDenied", "denied the upload"),
        (418, "Teapot", "Cloud Storage refused the upload"),
    ],
)
def test_storage_errors_become_messages(cli: Cli, tmp_path: Path, status: int, code: str, words: str) -> None:
    xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>Nope.</Message></Error>"
    cli.fake.storage_failures.append((status, {"Content-Type": "application/xml"}, xml.encode()))
    source = qa_file(tmp_path / "qa.jsonl")
    exit_code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert exit_code == 2
    assert words in err
    assert f"HTTP {status} {code}: Nope." in err


def test_a_busy_storage_is_retried_with_the_whole_file(cli: Cli, tmp_path: Path) -> None:
    cli.fake.storage_failures.append((503, {}, b"<Error><Code>ServiceUnavailable</Code></Error>"))
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 0, err
    assert [p.body for p in cli.fake.puts] == [source.read_bytes()] * 2


def test_storage_failing_every_time_is_exit_1(cli: Cli, tmp_path: Path) -> None:
    cli.fake.storage_failures.extend([(503, {}, b"busy")] * 4)
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    assert code == 1
    assert len(cli.fake.puts) == 4
    assert "after 4 attempts" in err


def test_a_replayed_create_does_not_upload_twice(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    argv = ("datasets", "create", str(source), "--name", "qa", "--input", "q", "--via", "url")
    code, _, err = cli(*argv, "--idempotency-key", "k-1", "--wait")
    assert code == 0, err
    code, _, err = cli(*argv, "--idempotency-key", "k-1")
    assert code == 0, err
    assert "this Idempotency-Key was used before" in err
    assert len(cli.fake.puts) == 1
    assert [p.headers["idempotency-key"] for p in cli.posts()] == ["k-1", "k-1"]


def test_create_retries_a_busy_api_with_the_same_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    cli.fake.api_failures.append(503)
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", "qa", "--input", "q")
    assert code == 0, err
    first, second = cli.posts()
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body


# -- waiting -----------------------------------------------------------------------------------------


def test_wait_reports_a_failed_version_with_its_bad_rows_and_exit_1(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl", bad_lines=(3, 7))
    code, out, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--reference", "answer", "--wait"
    )
    assert code == 1
    assert "version 1 failed (bad_rows): 2 bad row(s) (first on line 3" in out
    assert "bad rows (first 2):" in out
    assert "  line 3: missing field 'answer' (the reference)" in out
    assert "  line 7: missing field 'answer' (the reference)" in out
    gets = [r for r in cli.fake.requests if r.method == "GET"]
    assert len(gets) == cli.fake.processing_polls + 1
    assert "processing" in err  # the status line while waiting
    assert "hint: to ingest the good rows and skip the bad ones, create it with --skip-bad-rows" in err


def test_wait_with_json_is_one_document_with_the_final_version(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl", bad_lines=(3,))
    code, out, _ = cli(
        "--json",
        "datasets",
        "create",
        str(source),
        "--name",
        "qa",
        "--input",
        "q",
        "--reference",
        "answer",
        "--wait",
    )
    assert code == 1
    document = json.loads(out)
    assert document["version"]["status"] == "failed"
    assert document["version"]["bad_rows"] == [
        {"line": 3, "reason": "missing field 'answer' (the reference)"}
    ]
    assert document["dataset"]["versions"][0]["status"] == "failed"


def test_wait_ready_prints_rows_per_split(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl", rows=50, bad_lines=(5,))
    code, out, err = cli(
        "datasets",
        "create",
        str(source),
        "--name",
        "qa",
        "--input",
        "q",
        "--reference",
        "answer",
        "--skip-bad-rows",
        "--max-bad-fraction",
        "0.1",
        "--splits",
        "0.5,0.25,0.25",
        "--split-seed",
        "7",
        "--wait",
    )
    assert code == 0, err
    body = cli.posts()[0].json()
    assert body["bad_row_policy"] == "skip_bad_rows"
    assert body["max_bad_fraction"] == 0.1
    assert body["splits"] == {"train": 0.5, "validation": 0.25, "test": 0.25}
    assert body["split_seed"] == 7
    ready = next(line for line in out.splitlines() if "ready" in line)
    assert "version 1 ready: 49 rows (train " in ready
    assert "1 bad row(s) skipped" in out
    assert "line 5:" in out


def test_wait_gives_up_after_the_timeout(cli: Cli, tmp_path: Path) -> None:
    cli.fake.processing_polls = 10**6
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--wait", "--wait-timeout", "0.05"
    )
    assert code == 1
    assert "still processing after" in err
    assert "promptopt datasets get ds_" in err


# -- upload a new version -----------------------------------------------------------------------------


def test_upload_makes_a_new_version(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    cli("datasets", "create", str(source), "--name", "qa", "--input", "q")
    ds = next(iter(cli.fake.datasets))
    second = qa_file(tmp_path / "v2.jsonl", rows=30)
    code, out, err = cli("datasets", "upload", str(second), ds, "--via", "url", "--wait")
    assert code == 0, err
    post = cli.posts()[-1]
    assert post.path == f"/api/v1/datasets/{ds}/versions"
    assert post.json() == {"upload_max_bytes": second.stat().st_size}
    assert post.headers["idempotency-key"]
    assert cli.fake.puts[-1].path == f"/upload/{ds}/v2"
    assert "version 2 ready: 30 rows" in out


def test_upload_refuses_a_file_of_another_format_before_sending(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    cli("datasets", "create", str(source), "--name", "qa", "--input", "q")
    ds = next(iter(cli.fake.datasets))
    other = tmp_path / "qa.csv"
    other.write_text("q\nx\n")
    code, _, err = cli("datasets", "upload", str(other), ds)
    assert code == 2
    assert "looks like csv" in err
    assert len(cli.posts()) == 1


def test_upload_to_a_missing_dataset_is_a_404(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("datasets", "upload", str(qa_file(tmp_path / "qa.jsonl")), "ds_missing")
    assert code == 2
    assert "dataset_not_found" in err
    assert cli.posts() == []


# -- reading ------------------------------------------------------------------------------------------


@pytest.fixture
def ready(cli: Cli, tmp_path: Path) -> str:
    source = qa_file(tmp_path / "qa.jsonl", rows=40)
    code, _, err = cli(
        "datasets", "create", str(source), "--name", "qa", "--input", "q", "--reference", "answer", "--wait"
    )
    assert code == 0, err
    return next(iter(cli.fake.datasets))


def test_get_human_and_json(cli: Cli, ready: str) -> None:
    code, out, _ = cli("datasets", "get", ready)
    assert code == 0
    assert "dataset_id:" in out
    assert "inputs: q; reference: answer" in out
    assert "VERSION  STATUS" in out
    assert "ready" in out
    assert "distinct" in out
    code, out, _ = cli("--json", "datasets", "get", ready, "--versions", "5")
    assert json.loads(out)["dataset_id"] == ready
    assert cli.fake.requests[-1].query == {"versions": "5"}


def test_get_shows_why_a_version_failed(cli: Cli, tmp_path: Path) -> None:
    cli(
        "datasets",
        "create",
        str(qa_file(tmp_path / "qa.jsonl", bad_lines=(2,))),
        "--name",
        "qa",
        "--input",
        "q",
        "--reference",
        "answer",
        "--wait",
    )
    ds = next(iter(cli.fake.datasets))
    code, out, _ = cli("datasets", "get", ds)
    assert code == 0
    assert "version 1 failed" in out
    assert "line 2:" in out


def test_list_pages_and_all(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    for name in ("a", "b", "c"):
        cli("datasets", "create", str(source), "--name", name, "--input", "q")
    code, out, err = cli("datasets", "list", "--page-size", "2")
    assert code == 0
    assert out.count("ds_") == 2
    assert "--page-token 2" in err
    code, out, _ = cli("--json", "datasets", "list", "--page-size", "2", "--all")
    page = json.loads(out)
    assert [d["name"] for d in page["items"]] == ["c", "b", "a"]
    assert page["next_page_token"] is None
    code, out, _ = cli("datasets", "list", "--name", "b")
    assert out.count("ds_") == 1
    assert cli.fake.requests[-1].query == {"name": "b"}


def test_sample_passes_its_options(cli: Cli, ready: str) -> None:
    code, out, err = cli(
        "datasets", "sample", ready, "-n", "3", "--split", "train", "--seed", "9", "--version", "1"
    )
    assert code == 0, err
    assert cli.fake.requests[-1].query == {"n": "3", "split": "train", "seed": "9", "version": "1"}
    assert "3 rows (seed 9, train split)" in out
    assert "ROW  LINE  SPLIT  Q" in out
    code, out, _ = cli("--json", "datasets", "sample", ready, "-n", "3", "--seed", "9")
    assert len(json.loads(out)["rows"]) == 3


def test_rows_pages_and_all(cli: Cli, ready: str) -> None:
    code, out, err = cli("datasets", "rows", ready, "--page-size", "5")
    assert code == 0, err
    assert "5 rows" in out
    assert "--page-token 5" in err
    code, out, _ = cli("--json", "datasets", "rows", ready, "--all", "--page-size", "15", "--split", "test")
    page = json.loads(out)
    assert page["items"]
    assert {r["split"] for r in page["items"]} == {"test"}
    assert page["dataset_id"] == ready
    assert page["version"] == 1


def test_delete_needs_yes(cli: Cli, ready: str) -> None:
    before = len(cli.fake.requests)
    code, _, err = cli("datasets", "delete", ready)
    assert code == 2
    assert "--yes" in err
    assert len(cli.fake.requests) == before
    code, out, _ = cli("datasets", "delete", ready, "--yes")
    assert code == 0
    assert f"deleted {ready}" in out
    assert cli.fake.requests[-1].method == "DELETE"
    code, _, err = cli("datasets", "delete", ready, "--yes")
    assert code == 2
    assert "dataset_not_found" in err


# -- bundled datasets ---------------------------------------------------------------------------------


def test_create_from_a_bundled_dataset(cli: Cli) -> None:
    code, out, err = cli("datasets", "create", "--bundled", "bbh/boolean_expressions", "--wait")
    assert code == 0, err
    body = cli.posts()[0].json()
    path = cli_datasets.bundled_dir() / "bbh" / "boolean_expressions.jsonl"
    assert body["content"] == path.read_text(encoding="utf-8")
    assert body["mapping"] == {"inputs": ["input"], "reference": "target"}
    assert body["name"] == "bbh/boolean_expressions"
    assert "version 1 ready: 250 rows" in out


def test_bundled_lists_the_catalog(cli: Cli) -> None:
    code, out, _ = cli("datasets", "bundled")
    assert code == 0
    assert "bbh/boolean_expressions" in out
    assert "gsm8k/test-300" in out
    code, out, _ = cli("--json", "datasets", "bundled")
    assert {"name", "file", "mapping", "rows"} <= set(json.loads(out)["datasets"][0])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--bundled", "bbh/nope"], "choose one of: bbh/boolean_expressions"),
        (["--bundled", "bbh/navigate", "--input", "x"], "come with their file, format and mapping"),
        (["--name", "x", "--input", "q"], "give a FILE"),
        (["{file}", "--input", "q"], "--name is required"),
        (["{file}", "--name", "x"], "--input COLUMN is required"),
        (
            ["{file}", "--name", "x", "--input", "q", "--max-bad-fraction", "0.2"],
            "applies with --skip-bad-rows",
        ),
        (["{file}", "--name", "x", "--input", "q", "--splits", "0.5,0.5"], "expected three shares"),
        (["{file}", "--name", "x", "--input", "q", "--splits", "0.5,0.3,0.3"], "must sum to 1"),
        (["{txt}", "--name", "x", "--input", "q"], "pass --format"),
        (["{missing}", "--name", "x", "--input", "q"], "no such file"),
        (["{empty}", "--name", "x", "--input", "q"], "the file is empty"),
    ],
)
def test_usage_errors_send_nothing(cli: Cli, tmp_path: Path, argv: list[str], words: str) -> None:
    files = {
        "{file}": str(qa_file(tmp_path / "qa.jsonl")),
        "{txt}": str(qa_file(tmp_path / "qa.txt")),
        "{missing}": str(tmp_path / "missing.jsonl"),
        "{empty}": str(tmp_path / "empty.jsonl"),
    }
    (tmp_path / "empty.jsonl").write_bytes(b"")
    code, _, err = cli("datasets", "create", *[files.get(a, a) for a in argv])
    assert code == 2
    assert words in err
    assert cli.fake.requests == []


def test_api_validation_errors_are_printed(cli: Cli, tmp_path: Path) -> None:
    source = qa_file(tmp_path / "qa.jsonl")
    code, _, err = cli("datasets", "create", str(source), "--name", " ", "--input", "q")
    assert code == 2
    assert "validation_failed" in err
