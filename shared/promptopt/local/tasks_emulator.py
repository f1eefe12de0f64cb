r"""gcloud-tasks-emulator with each queue's retry_config applied, and a log that cannot flood.

The emulator (0.6.2) puts a failed task straight back on its queue and tries it again on the next
pass, ten passes a second: a target that is down takes hundreds of deliveries a second and the log
grows by a line or two for each. Cloud Tasks instead waits between attempts (min/max backoff,
doublings) and deletes the task after `max_attempts` and `max_retry_duration`. This launcher runs
the same emulator with its queue state taught that policy (see `task_retry`): after a failed
dispatch the task's `schedule_time` moves to the next retry, and the emulator's own "not due yet"
path holds it there; a task past its policy is deleted. Failed deliveries are logged one line each,
at most `LOG_BURST` per queue per `LOG_WINDOW_S`, then summarised; the emulator's per-pass lines are
dropped.

    python -m promptopt.local.tasks_emulator --port 8684 \
        --queue projects/p/locations/us-central1/queues/inference \
        --retry '{"projects/p/locations/us-central1/queues/inference": {"min_backoff_s": 2, ...}}'
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from promptopt.local.task_retry import RetryConfig

log = logging.getLogger("promptopt.local.tasks_emulator")

LOG_WINDOW_S = 10.0
LOG_BURST = 5
# The emulator's INFO lines for every pass over a queue, every dispatch and every re-queue: with
# tasks waiting out a backoff they would be written ten times a second each.
_NOISE = (
    "[TASKS] Processing next task",
    "[TASKS] Submitting task",
    "[TASKS] Requesting",
    "[TASKS] Moving failed task",
    "[TASKS] Error submitting task",
    "[TASKS] Host was",
    "[TASKS] Giving up failed task",
)
_FUTURE = "is scheduled for future execution"


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith(_NOISE) or _FUTURE in message)


class _RateLimitedLog:
    """At most `burst` lines per key per window; what was held back is counted in the next line."""

    def __init__(self, window_s: float = LOG_WINDOW_S, burst: int = LOG_BURST) -> None:
        self.window_s = window_s
        self.burst = burst
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, written, held back)
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            start, written, held = self._windows.get(key, (now, 0, 0))
            if now - start >= self.window_s:
                if held:
                    log.warning("%s: %d more failed deliveries were not logged", key, held)
                start, written, held = now, 0, 0
            if written >= self.burst:
                self._windows[key] = (start, written, held + 1)
                return
            self._windows[key] = (start, written + 1, held)
        log.warning(message, *args)


def backoff_state_class() -> type[Any]:
    """The emulator's QueueState, subclassed to follow each queue's retry_config."""
    from gcloud_tasks_emulator.server import QueueState

    class BackoffQueueState(QueueState):
        def __init__(self, *args: Any, retry: Mapping[str, RetryConfig], **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._retry = dict(retry)
            self._default_retry = RetryConfig.api_defaults()
            self._first_attempt: dict[str, float] = {}
            self._dispatches: dict[str, int] = {}
            self._waiting: dict[str, tuple[float, Any]] = {}  # name -> (due, task) while backing off
            self._log = _RateLimitedLog()
            self._bookkeeping = threading.Lock()

        def submit_task(self, task_name: str, force_run: bool = False) -> Any:
            queue_name = task_name.rsplit("?", 1)[0].rsplit("/", 2)[0]
            with self._bookkeeping:
                waiting = self._waiting.get(task_name)
            if waiting is not None and not force_run and waiting[0] > time.monotonic():
                # Backing off: skip the emulator's linear search and re-queue for this pass.
                return waiting[1]
            task = super().submit_task(task_name, force_run)
            name = str(task.name)
            with self._bookkeeping:
                self._waiting.pop(name, None)
                dispatched = task.dispatch_count > self._dispatches.get(name, 0)
                if not dispatched:  # not due yet: the emulator moved it along untouched
                    return task
                self._dispatches[name] = task.dispatch_count
                self._first_attempt.setdefault(name, time.monotonic())
            status = int(task.last_attempt.response_status.code)
            if not 400 <= status < 600:  # the emulator's own notion of success
                self._forget(name)
                return task
            policy = self._retry.get(queue_name, self._default_retry)
            attempts = int(task.dispatch_count)
            if policy.gives_up(attempts, time.monotonic() - self._first_attempt[name]):
                self._drop(queue_name, name)
                log.warning(
                    "task %s gave up after %d failed attempts (last status %s)", name, attempts, status
                )
                return task
            delay = policy.delay(attempts)
            task.schedule_time = datetime.now(UTC) + timedelta(seconds=delay)
            with self._bookkeeping:
                self._waiting[name] = (time.monotonic() + delay, task)
            self._log.warning(
                queue_name,
                "task %s attempt %d failed with status %s; next attempt in %.1fs",
                name,
                attempts,
                status,
                delay,
            )
            return task

        def purge_queue(self, queue_name: str) -> Any:
            with self._bookkeeping:
                for table in (self._first_attempt, self._dispatches, self._waiting):
                    for name in [n for n in table if n.startswith(queue_name + "/")]:
                        del table[name]
            return super().purge_queue(queue_name)

        def _drop(self, queue_name: str, name: str) -> None:
            tasks = self._queue_tasks.get(queue_name, [])
            self._queue_tasks[queue_name] = [t for t in tasks if t.name != name]
            self._forget(name)

        def _forget(self, name: str) -> None:
            with self._bookkeeping:
                self._first_attempt.pop(name, None)
                self._dispatches.pop(name, None)
                self._waiting.pop(name, None)

    return BackoffQueueState


def create_server(port: int, queues: Sequence[str], retry: Mapping[str, RetryConfig]) -> Any:
    """The emulator's Server on `port` (all interfaces, as the emulator binds), with backoff."""
    from gcloud_tasks_emulator import server as emulator

    instance = emulator.create_server("localhost", port, default_queue_names=list(queues))
    # The queues were created by the stock state; hand them to ours before anything runs.
    state = backoff_state_class()(emulator.DEFAULT_TARGET_HOST, emulator.DEFAULT_TARGET_PORT, -1, retry=retry)
    state._queues, state._queue_tasks = instance._state._queues, instance._state._queue_tasks
    instance._state = state
    instance._api._state = state
    instance._processor._state = state
    return instance


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m promptopt.local.tasks_emulator", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queue", action="append", default=[], help="full queue name, repeatable")
    parser.add_argument("--retry", default="{}", help="JSON: queue name -> RetryConfig fields")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.addFilter(_DropNoise())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    retry = {name: RetryConfig(**fields) for name, fields in json.loads(args.retry).items()}
    for name in args.queue:
        log.info("queue %s: %s", name, retry.get(name, RetryConfig.api_defaults()))
    print("Starting Cloud Tasks Emulator", flush=True)
    create_server(args.port, args.queue, retry).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
