"""Cloud Scheduler's part in the local stack: a message on `schedule-tick` every few seconds.

There is no Cloud Scheduler emulator. In the cloud a scheduler job publishes to the topic the
tick function's manifest names; locally this thread publishes the same message to the Pub/Sub
emulator (once at start, then every `interval_s`), and the push subscription the stack wires
delivers it to `experiments_tick`, which starts due scheduled runs and sweeps idle ones. It runs
only while the stack runs and stops cleanly with it. `PROMPTOPT_TICK_INTERVAL_S` (default 30)
sets the interval; 0 turns it off.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime

log = logging.getLogger("promptopt.local.ticker")

INTERVAL_ENV = "PROMPTOPT_TICK_INTERVAL_S"
DEFAULT_INTERVAL_S = 30.0
TOPIC = "schedule-tick"
# The emulator's address only: an http_proxy in the environment must not intercept it.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def interval_from_env(environ: dict[str, str] | None = None) -> float:
    """Seconds between ticks from PROMPTOPT_TICK_INTERVAL_S (0: no ticks)."""
    raw = (os.environ if environ is None else environ).get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise ValueError(f"{INTERVAL_ENV} must be 0 (off) or more")
    return value


class Ticker:
    """Publishes a tick to `topic` on the emulator at `pubsub_host` every `interval_s` seconds."""

    def __init__(self, pubsub_host: str, topic: str, interval_s: float) -> None:
        self.url = f"http://{pubsub_host}/v1/{topic}:publish"
        self.interval_s = interval_s
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Ticker:
        """Tick now and then every interval, in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="schedule-ticker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop ticking and wait for the thread (a publish in flight finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def tick(self) -> bool:
        """Publish one tick now; False (logged) when the emulator did not take it."""
        message = {"source": "local-stack", "at": datetime.now(UTC).isoformat()}
        data = base64.b64encode(json.dumps(message).encode()).decode()
        body = json.dumps({"messages": [{"data": data}]}).encode()
        request = urllib.request.Request(  # noqa: S310 - an http:// URL built from the emulator's address
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with _OPENER.open(request, timeout=5):
                self.sent += 1
                return True
        except (OSError, urllib.error.URLError) as exc:
            log.warning("schedule tick not published: %s", exc)
            return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval_s)
