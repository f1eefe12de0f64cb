"""Fault injection for batch tests, decided by each request's content instead of arrival order.

Rows of a chunk run concurrently, so a script consumed in arrival order would hit arbitrary rows.
These fakes pick the behaviour from the prompt text instead: a prompt holding the BUSY marker
gets a 429 the first `busy_times` times it is sent (then succeeds); a prompt holding the POISON
marker always gets a 400. Everything else succeeds.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.fakes.model_servers import FakeOpenAI, FakeVertex, Recorded

POISON = "POISON"
BUSY = "BUSY"


class _ContentFaults:
    """Mixin over a FakeServer: the behaviour follows the request's text."""

    busy_times: int
    sent: Counter[str]
    _lock: Any
    requests: list[Recorded]

    def _next(self, path: str, headers: dict[str, str], body: Any) -> str:
        text = json.dumps(body, sort_keys=True)
        with self._lock:
            seen = self.sent[text]
            self.sent[text] += 1
            if POISON in text:
                behaviour = "400"
            elif BUSY in text and seen < self.busy_times:
                behaviour = "429"
            else:
                behaviour = "ok"
            self.requests.append(Recorded(path, headers, body, behaviour))
            return behaviour


class FaultyOpenAI(_ContentFaults, FakeOpenAI):
    """FakeOpenAI whose faults follow the prompt text (see the module docstring)."""

    def __init__(self, *, busy_times: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.busy_times = busy_times
        self.sent = Counter()


class FaultyVertex(_ContentFaults, FakeVertex):
    """FakeVertex whose faults follow the prompt text (see the module docstring)."""

    def __init__(self, *, busy_times: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.busy_times = busy_times
        self.sent = Counter()
