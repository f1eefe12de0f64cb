"""Free ports for the local stack come from below the OS's ephemeral range."""

from __future__ import annotations

import socket

import pytest

from promptopt.local import ports


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    picked = ports.free_ports(8)
    assert len(set(picked)) == 8
    low = ports._ephemeral_low()
    assert all(1024 <= p < low for p in picked), (picked, low)
    for port in picked:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # still free: the picking sockets are closed


def test_the_os_picks_when_nothing_below_the_range_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: 1024)  # no room below it
    (port,) = ports.free_ports(1)
    assert port > 0


def test_a_port_handed_out_is_not_handed_out_again() -> None:
    """A stack picks its emulators' ports, then its functions' before the emulators bind theirs."""
    picked = [port for _ in range(60) for port in ports.free_ports(20)]
    assert len(set(picked)) == len(picked)  # 1,200 draws from 10,000 ports would repeat dozens of times
