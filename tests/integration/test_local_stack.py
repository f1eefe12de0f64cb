"""The local stack: starts ephemeral, serves functions as bundled, refuses busy ports, stops clean."""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from promptopt.local.emulators import Emulators, reset_firestore
from promptopt.local.ports import accepts_connections
from promptopt.local.stack import Stack, StackConfig, StackError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[Stack]:
    monkeypatch_module.setenv("PROMPTOPT_DEV_ISSUER_DIR", str(tmp_path_factory.mktemp("issuer")))
    with Stack(StackConfig.ephemeral()) as running:
        yield running


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _ports(stack: Stack) -> list[int]:
    urls = [
        *stack.function_urls.values(),
        *(f"http://{v}" for k, v in stack.env.items() if k.endswith("_HOST")),
    ]
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    return [*ports, stack.config.gateway_port]


def test_a_function_answers_on_its_own_port(stack: Stack) -> None:
    assert stack.startup_s is not None
    response = httpx.get(f"{stack.function_urls['health']}/api/v1/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["environment"] == "local"


def test_the_gateway_routes_to_the_functions(stack: Stack) -> None:
    response = httpx.get(f"{stack.gateway_url}/api/v1/health", timeout=10)
    assert response.status_code == 200


def test_a_busy_port_is_refused_without_disturbing_the_running_stack(stack: Stack, tmp_path: Path) -> None:
    second = dataclasses.replace(StackConfig.ephemeral(), gateway_port=stack.config.gateway_port)
    with pytest.raises(StackError, match=rf"port {stack.config.gateway_port} \(gateway\).*already in use"):
        Stack(second).start()
    assert httpx.get(f"{stack.gateway_url}/api/v1/health", timeout=10).status_code == 200


def test_stop_leaves_nothing_listening(stack: Stack) -> None:
    ports = _ports(stack)
    assert all(accepts_connections("127.0.0.1", p) for p in ports)
    stack.stop()
    stack.stop()  # idempotent
    assert [p for p in ports if accepts_connections("127.0.0.1", p)] == []


def test_emulators_alone_for_pytest() -> None:
    with Emulators(which=("firestore",), project="promptopt-test") as emu:
        host = emu.env["FIRESTORE_EMULATOR_HOST"]
        assert emu.env["GOOGLE_CLOUD_PROJECT"] == "promptopt-test"
        reset_firestore(host, "promptopt-test")
        with urllib.request.urlopen(f"http://{host}/", timeout=5) as response:
            assert response.status == 200
    address, port = host.rsplit(":", 1)
    assert not accepts_connections(address, int(port))
