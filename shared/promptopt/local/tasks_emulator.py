r"""gcloud-tasks-emulator with each queue's retry_config and concurrent dispatch, and a log that cannot flood.

The emulator (0.6.2) puts a failed task straight back on its queue and tries it again on the next
pass, ten passes a second: a target that is down takes hundreds of deliveries a second and the log
grows by a line or two for each. Cloud Tasks instead waits between attempts (min/max backoff,
doublings) and deletes the task after `max_attempts` and `max_retry_duration`. This launcher runs
the same emulator with its queue state taught that policy (see `task_retry`): after a failed
dispatch the task's `schedule_time` moves to the next retry, and the emulator's own "not due yet"
path holds it there; a task past its policy is deleted. Failed deliveries are logged one line each,
at most `LOG_BURST` per queue per `LOG_WINDOW_S`, then summarised; the emulator's per-pass lines are
dropped.

The emulator also dispatches one task at a time per queue, each pass after a 100 ms sleep, where
Cloud Tasks has up to the queue's `max_concurrent_dispatches` in flight and dispatches as soon as a
task is created. Here each queue gets a pool of that many dispatchers (`--dispatch`, default
`DEFAULT_CONCURRENT_DISPATCHES`), woken by every created task; the queue's task list is only
touched under a lock, and a task is off the list while it is in flight, as before.

    python -m promptopt.local.tasks_emulator --port 8684 \
        --queue projects/p/locations/us-central1/queues/inference \
        --retry '{"projects/p/locations/us-central1/queues/inference": {"min_backoff_s": 2, ...}}' \
        --dispatch '{"projects/p/locations/us-central1/queues/inference": 20}'
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs

from promptopt.local.task_retry import RetryConfig

log = logging.getLogger("promptopt.local.tasks_emulator")

LOG_WINDOW_S = 10.0
LOG_BURST = 5
# modules/messaging's default max_concurrent_dispatches (queues Terraform configures state theirs).
DEFAULT_CONCURRENT_DISPATCHES = 20
# How long a task's name stays taken after the task was created: Cloud Tasks keeps it for about an
# hour after the task ran or was deleted (the chunks' task epochs exist for that reason).
NAME_RESERVED_S = 3600.0
_IDLE_WAIT_S = 0.1  # a queue with nothing new is looked at again after this (tasks backing off)
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

            self._tasks_lock = threading.RLock()  # every change to a queue's task list
            self._names: dict[str, float] = {}  # task name -> when it was created (monotonic)
            self._wakeups: dict[str, threading.Event] = {}

        def wakeup(self, queue: str) -> threading.Event:
            """Set when the queue may have a task to dispatch (one was created or a dispatch ended)."""
            with self._bookkeeping:
                return self._wakeups.setdefault(queue, threading.Event())

        def due(self, task: Any) -> bool:
            """Whether a dispatch of `task` now would send it (not backing off, not scheduled later)."""
            with self._bookkeeping:
                waiting = self._waiting.get(str(task.name))
            if waiting is not None and waiting[0] > time.monotonic():
                return False
            return not (task.schedule_time and task.schedule_time >= datetime.now(UTC))

        def create_task(self, queue: str, task: Any) -> Any:
            from google.api_core.exceptions import AlreadyExists, NotFound

            name = str(task.name or "")
            with self._tasks_lock:
                if queue not in self._queue_tasks:
                    raise NotFound(f"Queue {queue} does not exist.")
                if name:
                    now = time.monotonic()
                    kept = self._names.get(name)
                    if kept is not None and now - kept < NAME_RESERVED_S:
                        # Cloud Tasks refuses a name in use, or used by a task that ran or was
                        # deleted within about an hour; the emulator would queue a duplicate.
                        raise AlreadyExists(f"Requested entity already exists: {name}")
                    self._names[name] = now
                created = super().create_task(queue, task)
            self.wakeup(queue).set()
            return created

        def queue(self, name: str) -> Any:
            from google.api_core.exceptions import NotFound

            try:
                return super().queue(name)
            except KeyError:  # the emulator lets the KeyError out (gRPC UNKNOWN); Cloud Tasks: NOT_FOUND
                raise NotFound(f"Queue {name} does not exist.") from None

        def submit_task(self, task_name: str, force_run: bool = False) -> Any:
            queue_name = task_name.rsplit("?", 1)[0].rsplit("/", 2)[0]
            with self._bookkeeping:
                waiting = self._waiting.get(task_name)
            if waiting is not None and not force_run and waiting[0] > time.monotonic():
                # Backing off: skip the emulator's linear search and re-queue for this pass.
                return waiting[1]
            task = self._dispatch(task_name, force_run)
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

        def _dispatch(self, task_name: str, force_run: bool) -> Any:
            """The emulator's submit_task, with the task list changed only under the lock.

            The stock method finds the task's index and pops it, then sends the request, then
            appends a failed task back: run from several threads, an index found before another
            thread's pop would take the wrong task.
            """
            from gcloud_tasks_emulator import server as emulator
            from google.api_core.exceptions import NotFound
            from google.cloud.tasks_v2 import Attempt
            from google.protobuf import timestamp_pb2

            name, _, query = task_name.partition("?")
            queue_name = name.rsplit("/", 2)[0]
            port = int(parse_qs(query).get("port", [self._target_port])[0]) if query else self._target_port

            def stamp() -> Any:
                value = timestamp_pb2.Timestamp()
                value.FromDatetime(datetime.now(UTC).replace(tzinfo=None))
                return value

            with self._tasks_lock:
                tasks = self._queue_tasks.get(queue_name)
                if tasks is None:
                    raise ValueError(f"{queue_name!r} is not a valid queue name")
                index = next((i for i, t in enumerate(tasks) if t.name == name), None)
                if index is None:
                    raise NotFound(f"Task not found: {name}")
                task = tasks.pop(index)
                if not force_run and task.schedule_time and task.schedule_time >= datetime.now(UTC):
                    tasks.append(task)  # not due yet: to the back of the queue, untouched
                    return task
                task.dispatch_count += 1
            scheduled, dispatched = stamp(), stamp()
            try:
                status = int(emulator._make_task_request(queue_name, task, self._target_host, port).status)
            except HTTPError as exc:
                status = int(exc.code)
            except Exception:  # noqa: BLE001 - the emulator's own rule: any failure is a 500
                status = 500
            attempt = Attempt(
                schedule_time=scheduled, dispatch_time=dispatched, response_status={"code": status}
            )
            task.first_attempt = task.first_attempt or attempt
            task.last_attempt = attempt
            if 400 <= status < 600:
                with self._tasks_lock:
                    if queue_name in self._queue_tasks:
                        self._queue_tasks[queue_name].append(task)  # retried (or dropped) by policy
            return task

        def purge_queue(self, queue_name: str) -> Any:
            with self._bookkeeping:
                for table in (self._first_attempt, self._dispatches, self._waiting):
                    for name in [n for n in table if n.startswith(queue_name + "/")]:
                        del table[name]
            with self._tasks_lock:
                return super().purge_queue(queue_name)

        def _drop(self, queue_name: str, name: str) -> None:
            with self._tasks_lock:
                tasks = self._queue_tasks.get(queue_name, [])
                self._queue_tasks[queue_name] = [t for t in tasks if t.name != name]
            self._forget(name)

        def _forget(self, name: str) -> None:
            with self._bookkeeping:
                self._first_attempt.pop(name, None)
                self._dispatches.pop(name, None)
                self._waiting.pop(name, None)

    return BackoffQueueState


def processor_class() -> type[Any]:
    """The emulator's Processor, dispatching up to each queue's limit at once."""
    from gcloud_tasks_emulator.server import Processor, Queue

    class ConcurrentProcessor(Processor):
        def __init__(self, state: Any, dispatch: Mapping[str, int]) -> None:
            super().__init__(state)
            self._limits = dict(dispatch)

        def _process_queue(self, queue: str) -> None:
            limit = max(1, int(self._limits.get(queue, DEFAULT_CONCURRENT_DISPATCHES)))
            in_flight: set[str] = set()
            lock = threading.Lock()
            wakeup = self._state.wakeup(queue)

            def dispatch(name: str) -> None:
                try:
                    self._state.submit_task(name)
                except Exception:
                    log.exception("dispatching %s failed", name)  # one task's failure never stops the queue
                finally:
                    with lock:
                        in_flight.discard(name)
                    wakeup.set()

            with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="dispatch") as pool:
                while self._is_running.is_set():
                    if queue not in self._state._queues or queue not in self._state._queue_tasks:
                        break  # the queue was deleted
                    wakeup.clear()
                    if self._state.queue(queue).state == Queue.State.RUNNING:
                        with self._state._tasks_lock:
                            listed = list(self._state._queue_tasks.get(queue, []))
                        # Tasks not due are left where they are (dispatching them would only spin).
                        for name in [str(t.name) for t in listed if self._state.due(t)]:
                            with lock:
                                if len(in_flight) >= limit:
                                    break
                                if name in in_flight:
                                    continue
                                in_flight.add(name)
                            pool.submit(dispatch, name)
                    # Until a task is created or a dispatch ends; at most the emulator's pass.
                    wakeup.wait(_IDLE_WAIT_S)

    return ConcurrentProcessor


def create_server(
    port: int,
    queues: Sequence[str],
    retry: Mapping[str, RetryConfig],
    dispatch: Mapping[str, int] | None = None,
) -> Any:
    """The emulator's Server on `port` (all interfaces, as the emulator binds), with backoff.

    Each queue dispatches up to `dispatch[queue]` tasks at once (default DEFAULT_CONCURRENT_DISPATCHES).
    """
    from gcloud_tasks_emulator import server as emulator

    instance = emulator.create_server("localhost", port, default_queue_names=list(queues))
    # The queues were created by the stock state; hand them to ours before anything runs.
    state = backoff_state_class()(emulator.DEFAULT_TARGET_HOST, emulator.DEFAULT_TARGET_PORT, -1, retry=retry)
    state._queues, state._queue_tasks = instance._state._queues, instance._state._queue_tasks
    instance._state = state
    instance._api._state = state
    instance._processor = processor_class()(state, dict(dispatch or {}))
    return instance


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m promptopt.local.tasks_emulator", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queue", action="append", default=[], help="full queue name, repeatable")
    parser.add_argument("--retry", default="{}", help="JSON: queue name -> RetryConfig fields")
    parser.add_argument("--dispatch", default="{}", help="JSON: queue name -> max concurrent dispatches")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.addFilter(_DropNoise())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    retry = {name: RetryConfig(**fields) for name, fields in json.loads(args.retry).items()}
    for name in args.queue:
        log.info("queue %s: %s", name, retry.get(name, RetryConfig.api_defaults()))
    dispatch = {name: int(limit) for name, limit in json.loads(args.dispatch).items()}
    print("Starting Cloud Tasks Emulator", flush=True)
    create_server(args.port, args.queue, retry, dispatch).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
