"""A local HTTP server that answers each request with the next (status, JSON body) of a script.

The emulators always succeed; this stands in for a service that fails on cue, to prove the retry
policy of the hand-written REST calls (promptopt.rest_calls) against real HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from promptopt import clients


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    method: str
    path: str  # with its query string
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedServer:
    """Answers request n with script[n]; the last entry answers every request after it."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = list(script)
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
                status, answer = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        """host:port to reach it at."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


Script = list[tuple[int, dict[str, Any]]]


def scripted_fixture(variable: str, address: Callable[[ScriptedServer], str]) -> Any:
    """A fixture starting scripted servers, each named by `variable` (an emulator's host variable).

    The test calls it with a script and gets the server; the clients are made anew for it.
    """

    @pytest.fixture
    def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Script], ScriptedServer]]:
        servers: list[ScriptedServer] = []

        def start(script: Script) -> ScriptedServer:
            server = ScriptedServer(script)
            servers.append(server)
            monkeypatch.setenv(variable, address(server))
            clients.reset()
            return server

        yield start
        for server in servers:
            server.close()
        monkeypatch.undo()
        clients.reset()

    return scripted
