"""TCP port helpers for the local stack: pick free ports, tell whether one is taken, wait for one."""

from __future__ import annotations

import contextlib
import random
import socket
import threading


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on `host` right now (another process may still take it later)."""
    return free_ports(1, host)[0]


# Ports below the OS's ephemeral range: outgoing connections take their source ports from that
# range, so a port the OS picks there (bind to 0) can be taken by any client's connection before
# the server it was picked for binds it, which on a busy machine fails a stack's start.
_BELOW_EPHEMERAL = 10_000
_TRIES = 200
# Its own state: the global generator's belongs to whoever seeds it (tests). Not for secrets.
_draws = random.Random()  # noqa: S311
# Ports this process has handed out: never handed out again. A stack picks its emulators' ports,
# then its functions' before every emulator has bound its own; a function given a port an emulator
# was about to bind failed to start, and the gateway sent its requests to that emulator.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()
_REMEMBERED = 5_000  # then forget (half the range below the ephemeral one)


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as found:
            return int(found.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports; every socket stays open until all are picked so none repeats.

    Drawn at random below the ephemeral range (see above), else picked by the OS; never one this
    process has handed out before (see `_handed_out`).
    """
    with _handed_out_lock:
        if len(_handed_out) > _REMEMBERED:
            _handed_out.clear()
        ports = _pick(count, host, frozenset(_handed_out))
        _handed_out.update(ports)
    return ports


def _pick(count: int, host: str, taken: frozenset[int]) -> list[int]:
    low = _ephemeral_low()
    candidates = _draws.sample(range(max(1024, low - _BELOW_EPHEMERAL), low), k=_TRIES) if low > 1024 else []
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for candidate in candidates:
            if len(ports) == count:
                break
            if candidate in taken:
                continue
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            ports.append(candidate)
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def is_port_free(host: str, port: int) -> bool:
    """True when nothing listens on `host:port` and we could bind it.

    SO_REUSEADDR lets the bind succeed over TIME_WAIT leftovers of a process that just stopped
    (those do not block a new server) while a live listener, even on 0.0.0.0 or [::], still fails it.
    """
    if accepts_connections(host, port):
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def accepts_connections(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when a TCP connection to `host:port` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
