"""A child process of the local stack: own process group, log file, readiness probe, clean stop.

Emulator launchers are shell or Python wrappers around a Java (or gRPC) server; killing only the
wrapper leaves the server holding its port. Every child therefore starts a new session and is
stopped by signalling its whole process group.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from promptopt.local.ports import accepts_connections

log = logging.getLogger("promptopt.local.process")

Probe = Callable[[], bool]


class StartupError(RuntimeError):
    """A child of the local stack exited or did not become ready in time."""


def tcp_probe(host: str, port: int) -> Probe:
    """Ready once the port accepts TCP connections."""
    return lambda: accepts_connections(host, port)


def http_probe(url: str) -> Probe:
    """Ready once `url` gives any HTTP answer (an error status still proves the server runs)."""
    # No proxies: an http_proxy in the environment would answer for a server that is not up yet.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def probe() -> bool:
        try:
            with opener.open(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, ValueError):
            return False

    return probe


class ManagedProcess:
    """One child process, started in its own session with stdout and stderr going to a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        probe: Probe,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.probe = probe
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The leader's process id (also its process group id), once started."""
        return self._proc.pid if self._proc else None

    def start(self, *, append: bool = False) -> None:
        """Launch the process without waiting for it to be ready (`append`: keep the log so far)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab" if append else "wb") as out:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        log.debug("started %s (pid %s): %s", self.name, self._proc.pid, " ".join(self.argv))

    def restart(self, timeout_s: float = 5.0) -> None:
        """Start the process again after it ended, keeping its log.

        What is left of its old process group is killed first: a framework's workers outliving
        their parent would still hold the port.
        """
        proc = self._proc
        if proc is not None:
            proc.poll()
            if _group_alive(proc.pid):
                _signal_group(proc.pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout_s
                while _group_alive(proc.pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
        with self.log_path.open("ab") as out:
            out.write(f"--- restarting {self.name} ---\n".encode())
        self.start(append=True)

    def exited(self) -> int | None:
        """The exit status if the process has ended, else None."""
        return self._proc.poll() if self._proc else None

    def wait_ready(self, deadline: float) -> None:
        """Poll the probe until it passes; raise StartupError on exit or at `deadline` (monotonic)."""
        if self._proc is None:
            raise StartupError(f"{self.name} was never started")
        delay = 0.02
        while True:
            status = self._proc.poll()
            if status is not None:
                raise StartupError(f"{self.name} exited with status {status} while starting\n{self.tail()}")
            if self.probe():
                return
            if time.monotonic() >= deadline:
                raise StartupError(f"{self.name} was not ready in time\n{self.tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log, labelled with its path, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        body = "\n".join(text.splitlines()[-lines:]) or "(empty log)"
        return f"--- last lines of {self.log_path} ---\n{body}"

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL whatever is left after `timeout_s`; idempotent."""
        proc = self._proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session makes the leader's pid the group id
        if not _signal_group(pgid, signal.SIGTERM):
            proc.wait()
            self._proc = None
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or its zombie would keep the group "alive"
            if not _group_alive(pgid):
                break
            time.sleep(0.05)
        else:
            log.warning("%s ignored SIGTERM for %.0fs; killing its process group", self.name, timeout_s)
            _signal_group(pgid, signal.SIGKILL)
        proc.wait()
        # A wrapper may exit first and leave its server child behind in the group.
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        self._proc = None  # only now: an interrupted stop must be able to run again


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except OSError as exc:  # never let one stubborn group stop the shutdown of the others
        log.warning("could not signal process group %s: %s", pgid, exc)
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we cannot signal still exists
        return True
    return True


def start_all(processes: Sequence[ManagedProcess], timeout_s: float) -> None:
    """Launch every process at once, then wait until each is ready; on failure stop them all."""
    try:
        for proc in processes:
            proc.start()
        wait_all(processes, timeout_s)
    except BaseException:
        stop_all(processes)
        raise


def wait_all(processes: Sequence[ManagedProcess], timeout_s: float) -> None:
    """Wait for already launched processes; they start concurrently, so one deadline covers all."""
    deadline = time.monotonic() + timeout_s
    for proc in processes:
        proc.wait_ready(deadline)


def stop_all(processes: Sequence[ManagedProcess], timeout_s: float = 5.0) -> None:
    """Stop processes in reverse order: SIGTERM all groups first so they wind down in parallel."""
    live = [p for p in reversed(processes) if p.pid is not None and p.exited() is None]
    for proc in live:
        if proc.pid is not None:
            _signal_group(proc.pid, signal.SIGTERM)
    for proc in reversed(processes):
        proc.stop(timeout_s)
