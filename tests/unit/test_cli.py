"""The `promptopt` CLI without the API: parsing, usage errors, import weight, the import graph, auth.

Everything that talks to the API runs against the real functions in tests/integration/cli/; here
`cli` runs `main(argv)` on a transport that records requests and answers none, so a test can prove
a mistake is caught before anything is sent.
"""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from promptopt import auth as api_auth
from promptopt.cli.auth import ROLES, TENANT_PATTERN
from promptopt.cli.main import main
from promptopt.cli.prompts import parse_metadata

CLI_PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "promptopt" / "cli"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class Offline:
    """Runs the CLI on a transport that records each request and answers 503 (nothing should be sent)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(503)

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--api-url", "http://api.test", "--retries", "0", *argv], transport=self.transport)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROMPTOPT_API_URL", "PROMPTOPT_TOKEN", "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Offline:
    return Offline(capsys)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _imports(path: Path, package: str) -> set[str]:
    """The promptopt.cli modules `path` imports (at any level, TYPE_CHECKING included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == package or name.startswith(package + ".")}


def test_the_cli_import_graph_has_no_cycle() -> None:
    modules = {}
    for path in CLI_PACKAGE.rglob("*.py"):
        parts = path.relative_to(CLI_PACKAGE.parent.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: _imports(path, "promptopt.cli") & set(modules) - {name} for name, path in modules.items()}
    assert "promptopt.cli.core.context" in graph
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*trail, name, target]))
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    # main only assembles: nothing imports it
    assert not [name for name, targets in graph.items() if "promptopt.cli.main" in targets]


def test_help_and_usage_errors_exit_codes(cli: Offline) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    assert "exit codes:" in out
    assert "scripts/dev" in out
    assert cli("prompts")[0] == 2
    assert cli("prompts", "label", "pr_x", "production")[0] == 2  # neither --version nor --remove
    assert cli("prompts", "get", "pr_x", "--version", "1", "--label", "a")[0] == 2
    assert cli.requests == []


def test_import_stays_light() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "from promptopt.cli.main import build_parser; build_parser()\n"
        "heavy = ('google', 'firebase_admin', 'httpx', 'pydantic', 'flask')\n"
        "loaded = [m for m in set(sys.modules) - before if m.split('.')[0] in heavy]\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


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
def test_bad_metadata_is_a_usage_error_before_any_request(cli: Offline, bad: str) -> None:
    code, _, err = cli("prompts", "create", "--output-prompt", "{x}", "--metadata", bad)
    assert code == 2
    assert "--metadata" in err
    assert cli.requests == []


def test_update_with_nothing_to_change_sends_nothing(cli: Offline) -> None:
    code, _, err = cli("prompts", "update", "pr_x", "--message", "only a message")
    assert code == 2
    assert "nothing to change" in err
    assert cli.requests == []


def test_unreadable_file_is_a_usage_error(cli: Offline, tmp_path: Path) -> None:
    code, _, err = cli("prompts", "create", "--output-prompt-file", str(tmp_path / "missing.txt"))
    assert code == 2
    assert "--output-prompt-file" in err


def test_connection_refused_names_the_url_and_scripts_dev(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    code = main(["--api-url", url, "--retries", "1", "prompts", "list"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot connect to the promptopt API at {url}" in err
    assert "scripts/dev" in err
    assert "2 attempts" in err


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
    server = _Server(toolkit.handle)
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


Reply = tuple[int, dict[str, str], Any]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        from urllib.parse import parse_qsl, urlsplit

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
        status, headers, body = self.server.handle(rec)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handle: Callable[[Recorded], Reply]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.handle = handle
