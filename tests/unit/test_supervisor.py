"""The local stack's supervisor restarts a dead child, backing off while it keeps crashing."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from promptopt.local import supervisor
from promptopt.local.process import ManagedProcess
from promptopt.local.supervisor import Supervisor


def _proc(tmp_path: Path, name: str, code: str) -> ManagedProcess:
    return ManagedProcess(
        name, [sys.executable, "-c", code], log_path=tmp_path / f"{name}.log", probe=lambda: True
    )


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_killed_process_is_started_again_and_its_log_kept(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "sleeper", "print('up', flush=True); import time; time.sleep(60)")
    proc.start()
    watcher = Supervisor([proc]).start()
    try:
        first = proc.pid
        assert first is not None
        assert _wait(lambda: "up" in proc.log_path.read_text(), 10)
        os.kill(first, signal.SIGKILL)
        assert _wait(lambda: proc.pid != first and proc.exited() is None, 5)
        assert _wait(lambda: proc.log_path.read_text().count("up") == 2, 10)
        assert "--- restarting sleeper ---" in proc.log_path.read_text()
        assert watcher.restarts == 1
    finally:
        watcher.stop()
        proc.stop()


def test_a_crash_loop_backs_off(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "crasher", "raise SystemExit(3)")
    proc.start()
    watcher = Supervisor([proc]).start()
    time.sleep(2.5)
    watcher.stop()
    proc.stop()
    # Delays 0.2, 0.4, 0.8, 1.6 s: three or four restarts in 2.5 s (unbounded, it would be dozens).
    assert 2 <= watcher.restarts <= 5, watcher.restarts
    assert supervisor.MAX_DELAY_S <= 60


def test_a_stopped_supervisor_restarts_nothing(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "short", "pass")
    watcher = Supervisor([proc], report_only=[]).start()
    watcher.stop()
    proc.start()
    time.sleep(0.6)
    assert watcher.restarts == 0
    proc.stop()


def test_a_report_only_process_is_not_restarted(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "emulator", "raise SystemExit(1)")
    proc.start()
    watcher = Supervisor([], report_only=[proc]).start()
    time.sleep(0.8)
    watcher.stop()
    assert watcher.restarts == 0
    assert proc.exited() == 1
    proc.stop()
