"""Fake model servers: real HTTP on a free loopback port, so the real client code runs.

`FakeVertex` speaks Vertex AI as google-genai calls it with `vertexai=True`, at
`POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}`: `generateContent`,
and for `embed_content` `predict` (text-embedding-* models: `instances[].content` in,
`predictions[].embeddings{values, statistics.token_count}` and `metadata.billableCharacterCount`
out), `embedContent` (one text to a gemini-embedding-* model) and `batchEmbedContents` (several).
`FakeOpenAI` speaks `POST /v1/chat/completions` and `POST /v1/embeddings`. Each takes a script
of behaviours consumed one per request (then `default`), records every request, and is a
context manager that starts and stops its server thread.

Fake embeddings are `embedding_dims` (default 16) hashed character-trigram counts, L2-normalised:
deterministic, and closer for texts that share more trigrams. Token counts are word counts.

Behaviours: "ok", "429", "500", "503", "400", "malformed", "blocked" (prompt blocked),
"safety" (candidate finish reason SAFETY / content_filter), "empty" (no candidates / choices),
"slow" (sleeps `slow_s` first, then ok). Embedding routes treat "blocked" and "safety" as ok.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

VERTEX_PATH = re.compile(
    r"^/v1beta1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+)"
    r":(?P<method>generateContent|predict|embedContent|batchEmbedContents)$"
)


def fake_embedding(text: str, dims: int = 16) -> list[float]:
    """Hashed character-trigram counts, L2-normalised (zero vector for text under 3 characters)."""
    vector = [0.0] * dims
    folded = text.casefold()
    for i in range(len(folded) - 2):
        digest = hashlib.sha256(folded[i : i + 3].encode()).digest()
        vector[digest[0] % dims] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: Any
    behaviour: str


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Threaded HTTP server on 127.0.0.1:<free port> with a scripted behaviour per request."""

    behaviours: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        script: list[str] | None = None,
        *,
        default: str = "ok",
        reply: str | Callable[[Any], str] = "42",
        input_tokens: int = 11,
        output_tokens: int = 7,
        latency_s: float = 0.0,
        slow_s: float = 1.0,
        embedding_dims: int = 16,
    ) -> None:
        for name in [*(script or []), default]:
            if name not in self.behaviours:
                raise ValueError(f"unknown behaviour {name!r}; known: {sorted(self.behaviours)}")
        self._script = list(script or [])
        self.default = default
        self.reply = reply
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.embedding_dims = embedding_dims
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind a free port and serve in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                reply = fake._handle(self.path, dict(self.headers.items()), body)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval keeps stop() (shutdown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # Scripting -----------------------------------------------------------------------------
    def script(self, *behaviours: str) -> None:
        """Queue behaviours for the next requests."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def _next(self, path: str, headers: dict[str, str], body: Any) -> str:
        with self._lock:
            behaviour = self._script.pop(0) if self._script else self.default
            self.requests.append(Recorded(path, headers, body, behaviour))
            return behaviour

    def _text(self, body: Any) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    def _handle(self, path: str, headers: dict[str, str], body: Any) -> _Reply:
        raise NotImplementedError


class _QuietServer(ThreadingHTTPServer):
    """Clients that time out close the socket mid-reply; that is expected, not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _json(status: int, payload: Any, **headers: str) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers=dict(headers))


def _google_error(status: int, name: str, message: str) -> _Reply:
    return _json(status, {"error": {"code": status, "message": message, "status": name}})


class FakeVertex(FakeServer):
    """Vertex AI generateContent (v1beta1, publisher models)."""

    behaviours = frozenset(
        {"ok", "429", "500", "503", "400", "malformed", "blocked", "safety", "empty", "slow"}
    )

    def _handle(self, path: str, headers: dict[str, str], body: Any) -> _Reply:
        route = VERTEX_PATH.match(path)
        if not route:
            return _google_error(404, "NOT_FOUND", f"fake vertex: no route {path}")
        behaviour = self._next(path, headers, body)
        if self.latency_s:
            time.sleep(self.latency_s)
        if behaviour == "slow":
            time.sleep(self.slow_s)
        if behaviour == "429":
            return _google_error(429, "RESOURCE_EXHAUSTED", "Resource exhausted, please try again later.")
        if behaviour in ("500", "503"):
            return _google_error(int(behaviour), "UNAVAILABLE", "The service is currently unavailable.")
        if behaviour == "400":
            return _google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        if behaviour == "malformed":
            return _Reply(200, b'{"candidates": [{"content": ', content_type="application/json")
        if route["method"] != "generateContent":
            return self._embed(route["method"], body, empty=behaviour == "empty")
        usage = {
            "promptTokenCount": self.input_tokens,
            "candidatesTokenCount": self.output_tokens,
            "totalTokenCount": self.input_tokens + self.output_tokens,
        }
        if behaviour == "blocked":
            return _json(200, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage})
        if behaviour == "empty":
            return _json(200, {"candidates": [], "usageMetadata": usage})
        finish = "SAFETY" if behaviour == "safety" else "STOP"
        parts = [] if behaviour == "safety" else [{"text": self._text(body)}]
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        return _json(200, {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "fake"})

    def _embed(self, method: str, body: Any, *, empty: bool) -> _Reply:
        def vector(text: str) -> dict[str, Any]:
            return {"values": fake_embedding(text, self.embedding_dims)}

        def text_of(content: dict[str, Any]) -> str:
            return "".join(part.get("text", "") for part in content.get("parts", []))

        if method == "predict":
            texts = [instance["content"] for instance in body["instances"]]
            predictions = [
                {"embeddings": {**vector(t), "statistics": {"token_count": len(t.split())}}} for t in texts
            ]
            billable = sum(len("".join(t.split())) for t in texts)  # Vertex bills non-space characters
            metadata = {"billableCharacterCount": billable}
            return _json(200, {"predictions": [] if empty else predictions, "metadata": metadata})
        if method == "embedContent":
            text = text_of(body["content"])
            return _json(
                200,
                {"embedding": {"values": []} if empty else vector(text),
                 "usageMetadata": {"promptTokenCount": len(text.split())}},
            )  # fmt: skip
        texts = [text_of(request["content"]) for request in body["requests"]]
        return _json(
            200,
            {"embeddings": [] if empty else [vector(t) for t in texts],
             "usageMetadata": {"promptTokenCount": sum(len(t.split()) for t in texts)}},
        )  # fmt: skip


class FakeOpenAI(FakeServer):
    """OpenAI-compatible chat completions at /v1/chat/completions (base_url = url + "/v1")."""

    behaviours = frozenset({"ok", "429", "500", "503", "400", "malformed", "safety", "empty", "slow"})

    @property
    def base_url(self) -> str:
        """The base URL an OpenAI client expects (with /v1)."""
        return self.url + "/v1"

    def _handle(self, path: str, headers: dict[str, str], body: Any) -> _Reply:
        if path not in ("/v1/chat/completions", "/v1/embeddings"):
            return _json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
        behaviour = self._next(path, headers, body)
        if self.latency_s:
            time.sleep(self.latency_s)
        if behaviour == "slow":
            time.sleep(self.slow_s)
        if behaviour == "429":
            return _json(
                429, {"error": {"message": "rate limited", "type": "rate_limit"}}, **{"Retry-After": "0"}
            )
        if behaviour in ("500", "503"):
            return _json(int(behaviour), {"error": {"message": "server error", "type": "server_error"}})
        if behaviour == "400":
            return _json(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
        if behaviour == "malformed":
            return _Reply(200, b"<html>not json</html>", content_type="text/html")
        if path == "/v1/embeddings":
            return self._embed(body, empty=behaviour == "empty")
        usage = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        if behaviour == "empty":
            return _json(200, {"id": "fake", "object": "chat.completion", "choices": [], "usage": usage})
        model = body.get("model", "fake") if isinstance(body, dict) else "fake"
        finish = "content_filter" if behaviour == "safety" else "stop"
        content = "" if behaviour == "safety" else self._text(body)
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        return _json(
            200,
            {"id": "fake", "object": "chat.completion", "model": model, "choices": [choice], "usage": usage},
        )

    def _embed(self, body: Any, *, empty: bool) -> _Reply:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        # Served in reverse order: clients must put vectors back by `index`.
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(t, self.embedding_dims)}
            for i, t in reversed(list(enumerate(texts)))
        ]
        tokens = sum(len(t.split()) for t in texts)
        return _json(
            200,
            {"object": "list", "data": [] if empty else data, "model": body.get("model", "fake"),
             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
        )  # fmt: skip
