"""Restart a local child that dies, as Cloud Run starts a new instance, with a bounded backoff.

The stack's function processes (and its gateway and storage stand-in, which hold no state) are
watched every `POLL_S`; one that has exited is started again after a delay that doubles with
each crash in a row, from `FIRST_DELAY_S` up to `MAX_DELAY_S`, and resets once it has stayed up
`STABLE_S`. Emulators are not restarted: their data lives in memory and a silent restart would
lose it, so their exit is only logged (once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from promptopt.local.process import ManagedProcess

log = logging.getLogger("promptopt.local.supervisor")

POLL_S = 0.2
FIRST_DELAY_S = 0.2
MAX_DELAY_S = 30.0
STABLE_S = 60.0


@dataclass
class _Watched:
    proc: ManagedProcess
    restart: bool
    started: float
    crashes: int = 0  # in a row
    due: float | None = None  # when a pending restart happens
    reported: bool = False


class Supervisor:
    """A daemon thread restarting `restart` processes that exit and reporting `report_only` ones."""

    def __init__(self, restart: Sequence[ManagedProcess], report_only: Sequence[ManagedProcess] = ()) -> None:
        now = time.monotonic()
        self._watched = [_Watched(p, True, now) for p in restart] + [
            _Watched(p, False, now) for p in report_only
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> Supervisor:
        """Begin watching."""
        self._thread = threading.Thread(target=self._run, name="stack-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the children are stopped, so none is restarted meanwhile)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            for watched in self._watched:
                try:
                    self._check(watched, time.monotonic())
                except Exception:  # one child's failure must not end the watch over the others
                    log.exception("supervising %s failed", watched.proc.name)

    def _check(self, watched: _Watched, now: float) -> None:
        proc = watched.proc
        status = proc.exited()
        if status is None:
            if watched.crashes and now - watched.started >= STABLE_S:
                watched.crashes = 0
            return
        if not watched.restart:
            if not watched.reported:
                watched.reported = True
                log.error(
                    "%s exited with status %s and is not restarted; see %s", proc.name, status, proc.log_path
                )
            return
        if watched.due is None:
            delay = min(FIRST_DELAY_S * 2**watched.crashes, MAX_DELAY_S)
            watched.crashes += 1
            watched.due = now + delay
            log.warning(
                "%s exited with status %s; restarting in %.1fs (crash %d in a row)",
                proc.name,
                status,
                delay,
                watched.crashes,
            )
            return
        if now < watched.due or self._stop.is_set():
            return
        watched.due = None
        watched.started = now
        proc.restart()
        self.restarts += 1
        log.info("%s restarted (pid %s)", proc.name, proc.pid)
