"""The local stack plays Cloud Scheduler: its ticks reach the tick function through Pub/Sub."""

from __future__ import annotations

import time

import pytest

from promptopt.local.stack import Stack

pytestmark = pytest.mark.e2e


def test_a_tick_reaches_the_tick_function(stack: Stack) -> None:
    assert stack.ticker is not None
    log = stack.state_dir / "logs" / "experiments_tick.log"
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        if "event handled:" in text:  # the tick function handled a tick
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no tick handled by experiments_tick within 45 s; its log:\n{text[-2000:]}")
    assert stack.ticker.sent >= 1
