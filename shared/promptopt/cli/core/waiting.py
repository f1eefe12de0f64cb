"""Waiting for the API to finish something: polling with backoff, and a status line while it runs.

On a terminal the status is a live rich line (spinner, text, an optional bar, elapsed time) that
disappears when the wait ends; off a terminal (a log, a pipe, CI) plain lines are written now and
then instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from promptopt.cli.core.context import CliError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

T = TypeVar("T")

#: Seconds between polls (the last value repeats).
POLL_INTERVALS_S: tuple[float, ...] = (0.5, 1.0, 1.0, 2.0)


def poll_interval(polls: int) -> float:
    """Seconds to sleep after poll number `polls` (0-based)."""
    if not POLL_INTERVALS_S:
        return 0.0
    return POLL_INTERVALS_S[min(polls, len(POLL_INTERVALS_S) - 1)]


def wait_until(
    fetch: Callable[[], T],
    *,
    settled: Callable[[T], bool],
    show: Callable[[T, float], None],
    timed_out: Callable[[T, float], CliError],
    timeout_s: float,
) -> T:
    """Fetch until `settled`; `show` each unsettled state; `timed_out` names the error past the timeout."""
    started = time.monotonic()
    polls = 0
    while True:
        state = fetch()
        if settled(state):
            return state
        elapsed = time.monotonic() - started
        show(state, elapsed)
        if elapsed >= timeout_s:
            raise timed_out(state, elapsed)
        time.sleep(poll_interval(polls))
        polls += 1


def is_terminal(stream: Any) -> bool:
    """Whether `stream` is an interactive terminal."""
    return bool(getattr(stream, "isatty", lambda: False)())


class StatusLine:
    """The state of a wait on stderr: a live line on a terminal, a line now and then otherwise.

    Off a terminal, `show` writes its text when it changed and either its `key` (say, a job's status)
    changed or `every_s` passed since the last line written; `finish` writes the final text unless
    it was the last line.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every_s: float = 0.0,
        bar: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = is_terminal(self.stream)
        self.every_s, self.bar, self.clock = every_s, bar, clock
        self._live: Progress | None = None
        self._task: TaskID | None = None
        self._last: str | None = None
        self._last_key: str | None = None
        self._written_at: float | None = None

    def show(
        self, text: str, *, key: str | None = None, completed: float | None = None, total: float | None = None
    ) -> None:
        """The current state (`text`), with a count of `completed` out of `total` for the bar."""
        if self.tty:
            self._draw(text, completed, total)
            return
        now = self.clock()
        due = self._written_at is None or now - self._written_at >= self.every_s
        if text != self._last and (key != self._last_key or due):
            self._write(text)
        self._last_key = key

    def finish(self, text: str | None = None) -> None:
        """The wait is over: end the live line, or log the final state (off a terminal)."""
        if self.tty:
            self.clear()
        elif text is not None and text != self._last:
            self._write(text)

    def clear(self) -> None:
        """End the live line so what follows starts clean (nothing to do off a terminal)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _draw(self, text: str, completed: float | None, total: float | None) -> None:
        if self._live is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.bar:
                columns.append(BarColumn())
            columns.append(TimeElapsedColumn())
            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._live = Progress(*columns, console=console, transient=True, refresh_per_second=8)
            self._task = self._live.add_task(text, total=total)
            self._live.start()
        assert self._task is not None
        self._live.update(self._task, description=text, completed=completed or 0, total=total)
        self._live.refresh()

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last, self._written_at = text, self.clock()
