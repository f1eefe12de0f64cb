"""A fake OpenAI-compatible chat server with a fixed latency, counting what it serves.

`POST /v1/chat/completions` (also `/chat/completions`) sleeps `--latency-ms` with
`asyncio.sleep`, so it serves any concurrency at the same latency, then answers a short
deterministic completion with usage tokens. The answer is DSPy ChatAdapter's field format,
`[[ ## answer ## ]]\\n<answer>\\n\\n[[ ## completed ## ]]`, which DSPy parses into `answer` and
any other client takes as plain text. `<answer>` is `a<digits>` when the last user message holds a
token `q<digits>-...`, so a caller can check that every row got its own answer.

What it served since the last reset, `GET /_stats`: requests, the TCP connections they came on
(`connections`: how well the client reuses them), the most requests in flight at once
(`max_in_flight`), the span from the first request's arrival to the last one's answer,
the time-averaged concurrency over that span (`mean_in_flight` = sum of request durations /
span), the time with nothing in flight (`idle_s`) and each such gap (`gaps_ms`), and the first
arrival and last answer on this machine's monotonic clock (`time.monotonic()`, the same in every
process), so a caller can place them on its own timeline; `GET /_timeline` lists every request's
(arrival, answer, client port) on that clock; `POST /_reset` starts a new count.
Anything else is 404 and counted as `unknown`.

Usage: python scripts/bench/fake_openai.py [--host H] [--port P] [--latency-ms L]
(prints `listening on http://H:P` once it accepts connections)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
from typing import Any

from aiohttp import web

QUESTION = re.compile(r"\bq(\d+)-")


def answer_for(text: str) -> str:
    """The answer the server gives to a message: `a<digits>` for a `q<digits>-` token, else `ok`."""
    found = QUESTION.findall(text)
    return f"a{found[-1]}" if found else "ok"


class Counter:
    """Requests served, concurrency and busy time since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.connections: set[Any] = set()
        self.unknown = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.total_request_s = 0.0
        self.first: float | None = None
        self.last: float | None = None
        self.idle_s = 0.0
        self.gaps: list[float] = []
        self.timeline: list[tuple[float, float, int]] = []
        self._idle_since: float | None = None

    def enter(self) -> float:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        elif self.in_flight == 0 and self._idle_since is not None:
            self.idle_s += now - self._idle_since
            self.gaps.append(now - self._idle_since)
        self.in_flight += 1
        self.requests += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return now

    def leave(self, started: float, port: int = 0) -> None:
        now = time.monotonic()
        self.in_flight -= 1
        self.total_request_s += now - started
        self.timeline.append((started, now, port))
        self.last = now
        if self.in_flight == 0:
            self._idle_since = now

    def stats(self) -> dict[str, Any]:
        span = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
        return {
            "requests": self.requests,
            "connections": len(self.connections),
            "unknown": self.unknown,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "span_s": round(span, 4),
            "mean_in_flight": round(self.total_request_s / span, 3) if span > 0 else 0.0,
            "idle_s": round(self.idle_s, 4),
            "gaps_ms": [round(g * 1000, 1) for g in self.gaps],
            "first_monotonic": self.first,
            "last_monotonic": self.last,
        }


def make_app(latency_s: float) -> web.Application:
    counter = Counter()

    async def completions(request: web.Request) -> web.Response:
        started = counter.enter()
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        counter.connections.add(peer)
        try:
            try:
                body = await request.json()
            except (ValueError, UnicodeDecodeError):
                return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
            messages = body.get("messages") or []
            users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            last = users[-1] if users else ""
            if not isinstance(last, str):  # content parts
                last = " ".join(str(p.get("text", "")) for p in last or [] if isinstance(p, dict))
            prompt_chars = sum(len(json.dumps(m.get("content", ""))) for m in messages if isinstance(m, dict))
            await asyncio.sleep(latency_s)
            text = f"[[ ## answer ## ]]\n{answer_for(last)}\n\n[[ ## completed ## ]]"
            completion_tokens = 12
            prompt_tokens = max(1, prompt_chars // 4)
            return web.json_response(
                {
                    "id": f"chatcmpl-{counter.requests}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": str(body.get("model") or "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
            )
        finally:
            counter.leave(started, peer[1] if isinstance(peer, tuple) and len(peer) > 1 else 0)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counter.stats())

    async def timeline(request: web.Request) -> web.Response:
        return web.json_response(counter.timeline)

    async def reset(request: web.Request) -> web.Response:
        counter.reset()
        return web.json_response(counter.stats())

    async def unknown(request: web.Request) -> web.Response:
        counter.unknown += 1
        return web.json_response(
            {"error": {"message": f"no route {request.method} {request.path}"}}, status=404
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_post("/chat/completions", completions)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_timeline", timeline)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/{tail:.*}", unknown)
    return app


async def serve(host: str, port: int, latency_s: float) -> None:
    runner = web.AppRunner(make_app(latency_s), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    print(f"listening on http://{host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.latency_ms / 1000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
