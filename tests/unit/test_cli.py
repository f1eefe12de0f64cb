"""The `promptopt` CLI, run through `main(argv)` against a small in-process fake of the HTTP API.

The fake speaks the API's wire format with the library's own pydantic models and problem
builder, so request bodies are validated exactly as the real functions validate them. It keeps
prompts in memory, records every request, and can be told to fail requests to exercise retries.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from pydantic import BaseModel, ValidationError

from promptopt import auth as api_auth
from promptopt.cli import client as cli_client
from promptopt.cli.auth import ROLES, TENANT_PATTERN
from promptopt.cli.main import main
from promptopt.cli.prompts import parse_metadata
from promptopt.errors import ApiError, NotFound, PreconditionFailed, PreconditionRequired
from promptopt.http.problems import from_api_error, from_validation
from promptopt.prompts.models import (
    LabelResult,
    LabelSet,
    PromptCreate,
    PromptPage,
    PromptSummary,
    PromptUpdate,
    PromptVersion,
    Provenance,
    VersionPage,
    version_id,
)
from promptopt.prompts.service import etag, parse_if_match
from promptopt.prompts.templates import placeholders

Reply = tuple[int, dict[str, str], Any]


class Handles(Protocol):
    def handle(self, rec: Recorded) -> Reply: ...


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    """In-memory prompts API. `failures` holds statuses to answer with, first come first served;
    `lose_responses` answers 502 *after* doing the work (a reply lost on the way back)."""

    requests: list[Recorded] = field(default_factory=list)
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[int] = field(default_factory=list)
    lose_responses: int = 0
    require_token: bool = False
    delays_s: list[float] = field(default_factory=list)
    idempotency: dict[str, Reply] = field(default_factory=dict)

    def handle(self, rec: Recorded) -> Reply:
        self.requests.append(rec)
        if self.delays_s:
            time.sleep(self.delays_s.pop(0))
        if self.failures:
            status = self.failures.pop(0)
            return (
                status,
                {},
                {"type": "x", "title": "busy", "status": status, "detail": "busy", "code": "busy"},
            )
        if self.require_token and not rec.headers.get("authorization", "").startswith("Bearer "):
            return 401, {}, {"title": "Unauthorized", "status": 401, "detail": "no token", "code": "no_token"}
        try:
            reply = self._route(rec)
        except ValidationError as exc:
            reply = self._problem(from_validation(exc, "body"))
        except ApiError as exc:
            reply = self._problem(exc)
        if self.lose_responses:
            self.lose_responses -= 1
            return 502, {}, "<html>bad gateway</html>"
        return reply

    @staticmethod
    def _problem(error: ApiError) -> Reply:
        return error.status, {}, from_api_error(error).model_dump(mode="json", exclude_none=True)

    @staticmethod
    def _ok(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return status, headers or {}, model.model_dump(mode="json")

    def _route(self, rec: Recorded) -> Reply:
        parts = [unquote(p) for p in rec.path.removeprefix("/api/v1/").split("/")]
        match rec.method, parts:
            case "GET", ["health"]:
                return 200, {}, {"status": "ok", "version": "test", "environment": "unit"}
            case "POST", ["prompts"]:
                return self._create(rec)
            case "GET", ["prompts"]:
                return self._list(rec.query)
            case "GET", ["prompts", pid]:
                return self._get(pid, rec.query)
            case "PUT", ["prompts", pid]:
                return self._update(pid, rec)
            case "GET", ["prompts", pid, "versions"]:
                return self._versions(pid, rec.query)
            case "PUT", ["prompts", pid, "labels", label]:
                head = self._head(pid)
                number = LabelSet.model_validate(rec.body).version
                self._version(head, number)
                head["labels"][label] = number
                return self._ok(LabelResult(prompt_id=pid, labels=head["labels"]))
            case "DELETE", ["prompts", pid, "labels", label]:
                head = self._head(pid)
                if head["labels"].pop(label, None) is None:
                    raise NotFound(f"prompt {pid} has no label {label!r}", code="label_not_found")
                return self._ok(LabelResult(prompt_id=pid, labels=head["labels"]))
        raise NotFound(f"no route {rec.path}", code="route_not_found")

    def _head(self, pid: str) -> dict[str, Any]:
        if pid not in self.prompts:
            raise NotFound(f"prompt {pid} not found", code="prompt_not_found")
        return self.prompts[pid]

    def _version(self, head: dict[str, Any], number: int) -> dict[str, Any]:
        if not 1 <= number <= len(head["versions"]):
            raise NotFound(f"no version {number}", code="version_not_found")
        return dict(head["versions"][number - 1])

    def _model(self, head: dict[str, Any], data: dict[str, Any]) -> PromptVersion:
        labels = sorted(k for k, v in head["labels"].items() if v == data["version"])
        return PromptVersion(
            **data,
            version_id=version_id(data["prompt_id"], data["version"]),
            variables=placeholders(data["output_prompt"]),
            labels=labels,
        )

    def _create(self, rec: Recorded) -> Reply:
        key = rec.headers.get("idempotency-key")
        if key in self.idempotency:
            status, headers, body = self.idempotency[key]
            return status, {**headers, "Idempotent-Replayed": "true"}, body
        body = PromptCreate.model_validate(rec.body)
        pid = f"pr_{len(self.prompts) + 1:020x}"
        now = datetime(2026, 1, 1, 12, 0, len(self.prompts), tzinfo=UTC)
        data = {
            "prompt_id": pid,
            "version": 1,
            "parent_id": None,
            "name": body.name,
            "system_prompt": body.system_prompt,
            "output_prompt": body.output_prompt,
            "metadata": body.metadata,
            "provenance": Provenance(),
            "created_at": now,
            "created_by": "dev-user",
        }
        head = {"versions": [data], "labels": {}, "created_at": now, "updated_at": now}
        self.prompts[pid] = head
        reply = self._ok(
            self._model(head, data), 201, {"ETag": etag(1), "Location": f"/api/v1/prompts/{pid}"}
        )
        if key:
            self.idempotency[key] = reply
        return reply

    def _get(self, pid: str, query: dict[str, str]) -> Reply:
        head = self._head(pid)
        if "label" in query:
            number = head["labels"][query["label"]]
        else:
            number = int(query.get("version", len(head["versions"])))
        return self._ok(self._model(head, self._version(head, number)), headers={"ETag": etag(number)})

    def _update(self, pid: str, rec: Recorded) -> Reply:
        head = self._head(pid)
        if "if-match" not in rec.headers:
            raise PreconditionRequired("this update needs an If-Match header", code="if_match_required")
        body = PromptUpdate.model_validate(rec.body)
        latest = len(head["versions"])
        base = parse_if_match(rec.headers["if-match"]) or latest
        if base != latest:
            raise PreconditionFailed(
                f"prompt {pid} is at version {latest}, not {base}; fetch it and retry",
                code="version_mismatch",
                current_etag=etag(latest),
            )
        data = self._version(head, base)
        changes = body.model_dump(exclude_none=True, exclude={"message"})
        data.update(changes, version=base + 1, parent_id=version_id(pid, base))
        data["provenance"] = Provenance(message=body.message)
        head["versions"].append(data)
        return self._ok(self._model(head, data), headers={"ETag": etag(base + 1)})

    @staticmethod
    def _page(query: dict[str, str], items: list[Any]) -> tuple[list[Any], str | None]:
        start = int(query.get("page_token", "0"))
        size = int(query.get("page_size", "20"))
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)

    def _list(self, query: dict[str, str]) -> Reply:
        summaries = [
            PromptSummary(
                prompt_id=pid,
                name=head["versions"][-1]["name"],
                latest_version=len(head["versions"]),
                labels=head["labels"],
                created_at=head["created_at"],
                updated_at=head["updated_at"],
                created_by="dev-user",
            )
            for pid, head in reversed(self.prompts.items())
            if query.get("name") in (None, head["versions"][-1]["name"])
        ]
        items, token = self._page(query, summaries)
        return self._ok(PromptPage(items=items, next_page_token=token))

    def _versions(self, pid: str, query: dict[str, str]) -> Reply:
        head = self._head(pid)
        newest_first = [self._model(head, v) for v in reversed(head["versions"])]
        items, token = self._page(query, newest_first)
        return self._ok(VersionPage(items=items, labels=head["labels"], next_page_token=token))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        rec = Recorded(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=json.loads(raw) if raw else None,
        )
        status, headers, body = self.server.api.handle(rec)
        if isinstance(body, str):
            payload, ctype = body.encode(), "text/html"
        else:
            payload = json.dumps(body).encode()
            ctype = "application/json" if status < 400 else "application/problem+json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: Handles) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that timed out and left
            super().handle_error(request, client_address)


@dataclass
class Cli:
    """Runs the CLI against the fake and returns (exit code, stdout, stderr)."""

    url: str
    api: FakeApi
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--api-url", self.url, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def create(self, template: str = "Q: {input}", *extra: str) -> str:
        code, out, err = self("--json", "prompts", "create", "--output-prompt", template, *extra)
        assert code == 0, err
        return str(json.loads(out)["prompt_id"])

    def sent(self, method: str) -> list[Recorded]:
        return [r for r in self.api.requests if r.method == method]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROMPTOPT_API_URL", "PROMPTOPT_TOKEN", "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_client, "RETRY_BACKOFF_S", (0.0,))


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def cli(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    server = _Server(api)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Cli(f"http://127.0.0.1:{server.server_port}", api, capsys)
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- health, help, usage ---------------------------------------------------------------------


def test_health_human_and_json(cli: Cli) -> None:
    code, out, _ = cli("health")
    assert code == 0
    assert "status:" in out
    assert "ok" in out
    code, out, _ = cli("--json", "health")
    assert code == 0
    assert json.loads(out) == {"status": "ok", "version": "test", "environment": "unit"}


def test_help_and_usage_errors_exit_codes(cli: Cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    assert "exit codes:" in out
    assert "scripts/dev" in out
    assert cli("prompts")[0] == 2
    assert cli("prompts", "label", "pr_x", "production")[0] == 2  # neither --version nor --remove
    assert cli("prompts", "get", "pr_x", "--version", "1", "--label", "a")[0] == 2
    assert cli.api.requests == []


def test_import_stays_light() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "from promptopt.cli.main import build_parser; build_parser()\n"
        "heavy = ('google', 'firebase_admin', 'httpx', 'pydantic', 'flask')\n"
        "loaded = [m for m in set(sys.modules) - before if m.split('.')[0] in heavy]\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- create ----------------------------------------------------------------------------------


def test_create_sends_body_and_a_fresh_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    system = tmp_path / "system.txt"
    system.write_text("You are terse.\n", encoding="utf-8")
    code, out, err = cli(
        "prompts",
        "create",
        "--output-prompt",
        "Q: {question}\nA:",
        "--system-prompt-file",
        str(system),
        "--name",
        "qa",
        "--metadata",
        "team=ml",
        "n=3",
        "--metadata",
        "temperature:=0.2",
    )
    assert code == 0, err
    assert "pr_" in out
    assert '"v1"' in out
    assert "question" in out
    cli.create()
    first, second = cli.sent("POST")
    assert first.body == {
        "output_prompt": "Q: {question}\nA:",
        "system_prompt": "You are terse.\n",
        "name": "qa",
        "metadata": {"team": "ml", "n": "3", "temperature": 0.2},
    }
    keys = [r.headers.get("idempotency-key") for r in (first, second)]
    assert all(keys)
    assert keys[0] != keys[1]
    assert first.headers["content-type"] == "application/json"


def test_create_validation_error_lists_fields(cli: Cli) -> None:
    code, out, err = cli("prompts", "create", "--output-prompt", "no placeholders here")
    assert code == 2
    assert out == ""
    assert "(validation_failed, HTTP 400)" in err
    assert "body.output_prompt:" in err


def test_create_retries_busy_answers_with_the_same_key(cli: Cli) -> None:
    cli.api.failures = [503, 502]
    pid = cli.create()
    posts = cli.sent("POST")
    assert len(posts) == 3
    assert len({r.headers["idempotency-key"] for r in posts}) == 1
    assert list(cli.api.prompts) == [pid]


def test_a_lost_create_response_is_replayed_not_repeated(cli: Cli) -> None:
    cli.api.lose_responses = 1  # the first create succeeds but its answer never arrives
    code, _, err = cli("prompts", "create", "--output-prompt", "{x}")
    assert code == 0
    assert "used before" in err
    assert len(cli.sent("POST")) == 2
    assert len(cli.api.prompts) == 1


def test_gives_up_after_the_retries_with_exit_1(cli: Cli) -> None:
    cli.api.failures = [503] * 10
    code, _, err = cli("--retries", "2", "prompts", "get", "pr_x")
    assert code == 1
    assert "HTTP 503" in err
    assert len(cli.api.requests) == 3


# -- metadata --------------------------------------------------------------------------------


def test_metadata_values_are_strings_unless_typed() -> None:
    parsed = parse_metadata(
        ["team=ml", "n=3", "on=true", "eq=a=b", "empty=", "t:=0.5", "f:=false", "z:=null"]
    )
    assert parsed == {
        "team": "ml",
        "n": "3",
        "on": "true",
        "eq": "a=b",
        "empty": "",
        "t": 0.5,
        "f": False,
        "z": None,
    }
    assert parse_metadata(["k=1", "k=2"]) == {"k": "2"}


@pytest.mark.parametrize("bad", ["novalue", "=v", ":=1", "k:=[1]", "k:={}", "k:=notjson"])
def test_bad_metadata_is_a_usage_error_before_any_request(cli: Cli, bad: str) -> None:
    code, _, err = cli("prompts", "create", "--output-prompt", "{x}", "--metadata", bad)
    assert code == 2
    assert "--metadata" in err
    assert cli.api.requests == []


# -- get / update ----------------------------------------------------------------------------


def test_get_human_and_json(cli: Cli) -> None:
    pid = cli.create("Translate: {text}", "--system-prompt", "Be exact.", "--name", "tr")
    code, out, _ = cli("prompts", "get", pid)
    assert code == 0
    assert out.splitlines()[0].split() == ["prompt_id:", pid]
    assert "--- system prompt ---\nBe exact." in out
    assert "--- output prompt ---\nTranslate: {text}" in out
    code, out, _ = cli("prompts", "get", pid, "--version", "1", "--json")  # --json after the command
    assert code == 0
    document = json.loads(out)
    assert document["version_id"] == f"{pid}@1"
    assert cli.api.requests[-1].query == {"version": "1"}


def test_update_without_base_version_gets_the_latest_then_sends_if_match(cli: Cli) -> None:
    pid = cli.create()
    code, out, err = cli(
        "prompts", "update", pid, "--output-prompt", "Question: {input}", "--message", "clearer"
    )
    assert code == 0, err
    get, put = cli.api.requests[-2:]
    assert (get.method, get.path) == ("GET", f"/api/v1/prompts/{pid}")
    assert (put.method, put.headers["if-match"]) == ("PUT", '"v1"')
    assert put.body == {"output_prompt": "Question: {input}", "message": "clearer"}
    assert '"v2"' in out
    assert f"{pid}@1" in out


def test_update_with_a_stale_base_version_prints_the_412(cli: Cli) -> None:
    pid = cli.create()
    assert cli("prompts", "update", pid, "--base-version", "1", "--name", "a")[0] == 0
    code, out, err = cli("prompts", "update", pid, "--base-version", "1", "--name", "b")
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: prompt {pid} is at version 2, not 1")
    assert "(version_mismatch, HTTP 412)" in err
    assert [r.method for r in cli.api.requests[-2:]] == ["PUT", "PUT"]  # no GET with --base-version


def test_update_problem_is_also_json_on_stdout_with_json(cli: Cli) -> None:
    pid = cli.create()
    code, out, _ = cli("--json", "prompts", "update", pid, "--base-version", "7", "--name", "x")
    assert code == 2
    assert json.loads(out)["code"] == "version_mismatch"


def test_update_with_nothing_to_change_sends_nothing(cli: Cli) -> None:
    code, _, err = cli("prompts", "update", "pr_x", "--message", "only a message")
    assert code == 2
    assert "nothing to change" in err
    assert cli.api.requests == []


def test_unreadable_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("prompts", "create", "--output-prompt-file", str(tmp_path / "missing.txt"))
    assert code == 2
    assert "--output-prompt-file" in err


# -- list / versions / labels ----------------------------------------------------------------


def test_list_shows_one_page_with_a_hint_and_all_follows_tokens(cli: Cli) -> None:
    ids = [cli.create() for _ in range(5)]
    code, out, err = cli("prompts", "list", "--page-size", "2")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["PROMPT_ID", "NAME", "LATEST"]
    assert len(out.splitlines()) == 3
    assert "--page-token 2" in err
    assert "--page-size 2" in err

    cli.api.requests.clear()
    code, out, _ = cli("--json", "prompts", "list", "--page-size", "2", "--all")
    assert code == 0
    document = json.loads(out)
    assert [p["prompt_id"] for p in document["items"]] == ids[::-1]
    assert document["next_page_token"] is None
    assert [r.query.get("page_token") for r in cli.api.requests] == [None, "2", "4"]


def test_list_empty(cli: Cli) -> None:
    code, out, err = cli("prompts", "list")
    assert (code, out) == (0, "")
    assert "no prompts" in err


def test_versions_lineage(cli: Cli) -> None:
    pid = cli.create()
    cli("prompts", "update", pid, "--name", "second", "--message", "rename")
    cli("prompts", "label", pid, "production", "--version", "1")
    code, out, _ = cli("prompts", "versions", pid)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"prompt {pid}  labels: production=1"
    assert lines[1].split() == [
        "VERSION",
        "PARENT",
        "LABELS",
        "SOURCE",
        "CREATED_BY",
        "CREATED_AT",
        "MESSAGE",
    ]
    assert lines[2].split()[:4] == ["2", "1", "-", "user"]
    assert lines[2].endswith("rename")
    assert lines[3].split()[:4] == ["1", "-", "production", "user"]

    code, out, _ = cli("--json", "prompts", "versions", pid, "--page-size", "1", "--all")
    document = json.loads(out)
    assert [v["version"] for v in document["items"]] == [2, 1]
    assert document["labels"] == {"production": 1}


def test_label_set_and_remove(cli: Cli) -> None:
    pid = cli.create()
    code, out, _ = cli("prompts", "label", pid, "production", "--version", "1")
    assert code == 0
    assert "labels: production=1" in out
    put = cli.api.requests[-1]
    assert (put.method, put.path, put.body) == (
        "PUT",
        f"/api/v1/prompts/{pid}/labels/production",
        {"version": 1},
    )
    code, out, _ = cli("--json", "prompts", "label", pid, "production", "--remove")
    assert code == 0
    assert json.loads(out) == {"prompt_id": pid, "labels": {}}
    code, _, err = cli("prompts", "label", pid, "production", "--remove")
    assert code == 2
    assert "(label_not_found, HTTP 404)" in err


def test_path_segments_are_escaped(cli: Cli) -> None:
    code, _, _ = cli("prompts", "get", "../../health")
    assert code == 2
    assert cli.api.requests[-1].path == "/api/v1/prompts/..%2F..%2Fhealth"


# -- auth headers, connection failures -------------------------------------------------------


def test_token_from_env_is_sent_and_401_without_one_hints(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.api.require_token = True
    code, _, err = cli("prompts", "list")
    assert code == 2
    assert "hint: no token was sent" in err
    monkeypatch.setenv("PROMPTOPT_TOKEN", "abc.def.ghi")
    assert cli("prompts", "list")[0] == 0
    assert cli.api.requests[-1].headers["authorization"] == "Bearer abc.def.ghi"
    assert cli("--token", "Bearer pasted.jwt.x", "prompts", "list")[0] == 0
    assert cli.api.requests[-1].headers["authorization"] == "Bearer pasted.jwt.x"


def test_a_slow_api_times_out_then_a_retry_succeeds(cli: Cli) -> None:
    cli.api.delays_s = [1.0, 1.0]
    code, _, err = cli("--timeout", "0.2", "--retries", "1", "health")
    assert code == 1
    assert "did not answer within 0.2s (2 attempts)" in err
    cli.api.delays_s = [1.0]
    assert cli("--timeout", "0.2", "health")[0] == 0


def test_connection_refused_names_the_url_and_scripts_dev(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    code = main(["--api-url", url, "--retries", "1", "prompts", "list"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot connect to the promptopt API at {url}" in err
    assert "scripts/dev" in err
    assert "2 attempts" in err


def test_api_url_from_env(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMPTOPT_API_URL", cli.url + "/")
    assert main(["health"]) == 0
    assert cli.api.requests[-1].path == "/api/v1/health"


# -- auth commands ---------------------------------------------------------------------------


def test_roles_and_tenant_rule_match_the_api() -> None:
    assert tuple(api_auth.Role.__members__) == ROLES
    assert api_auth._TENANT_RE.pattern == TENANT_PATTERN


def test_dev_token_is_signed_by_the_local_issuer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_issuer = pytest.importorskip("promptopt.local.dev_issuer")
    import jwt

    monkeypatch.setenv("PROMPTOPT_DEV_ISSUER_DIR", str(tmp_path))
    argv = ["auth", "dev-token", "--tenant", "acme", "--role", "editor", "--subject", "ann", "--ttl", "60"]
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, options={"verify_signature": False}, audience=dev_issuer.audience())
    assert (claims["sub"], claims["tenant"], claims["role"]) == ("ann", "acme", "editor")
    assert claims["exp"] - claims["iat"] == 60

    assert main(["--json", *argv]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tenant"] == "acme"
    assert document["token"].count(".") == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--tenant", "Acme", "--role", "editor"],
        ["--tenant=-acme", "--role", "editor"],
        ["--tenant", "acme", "--role", "owner"],
    ],
)
def test_set_claims_validates_before_touching_firebase(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["auth", "set-claims", "--uid", "u1", *argv]) == 2
    err = capsys.readouterr().err
    assert "is not a tenant id" in err or "argument --role: invalid choice" in err


@dataclass
class FakeIdentityToolkit:
    """The two Identity Toolkit calls firebase-admin makes, as the Auth emulator answers them."""

    users: dict[str, dict[str, Any]]
    requests: list[Recorded] = field(default_factory=list)

    def handle(self, rec: Recorded) -> Reply:
        self.requests.append(rec)
        if rec.path.endswith("/accounts:lookup"):
            found = [self.users[uid] for uid in rec.body["localId"] if uid in self.users]
            return (
                200,
                {},
                {"kind": "identitytoolkit#GetAccountInfoResponse", **({"users": found} if found else {})},
            )
        if rec.path.endswith("/accounts:update"):
            self.users[rec.body["localId"]]["customAttributes"] = rec.body["customAttributes"]
            return 200, {}, {"localId": rec.body["localId"]}
        return 404, {}, {"error": {"code": 404, "message": "NOT_FOUND"}}


def test_set_claims_keeps_other_claims(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Real firebase-admin, pointed (as its Auth emulator support allows) at a fake Identity Toolkit.
    toolkit = FakeIdentityToolkit(users={"u1": {"localId": "u1", "customAttributes": '{"beta": true}'}})
    server = _Server(toolkit)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", f"127.0.0.1:{server.server_port}")
    try:
        argv = ["auth", "set-claims", "--uid", "u1", "--tenant", "acme", "--role", "admin", "--project", "p1"]
        assert main(argv) == 0
        assert "tenant=acme role=admin" in capsys.readouterr().out
        assert json.loads(toolkit.users["u1"]["customAttributes"]) == {
            "beta": True,
            "tenant": "acme",
            "role": "admin",
        }
        assert toolkit.requests[-1].path == "/identitytoolkit.googleapis.com/v1/projects/p1/accounts:update"
        argv[3] = "nobody"
        assert main(argv) == 2
        assert "no Firebase user with uid 'nobody'" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()
