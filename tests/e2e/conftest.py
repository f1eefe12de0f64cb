"""The whole local stack (emulators, every function as bundled, the local gateway), once per session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from promptopt.local.stack import Stack, StackConfig
from tests.e2e.browser import browser  # noqa: F401 - the dashboard tests' headless Chromium


@pytest.fixture(scope="session")
def issuer_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private dev-issuer key for this run (the gateway trusts only it)."""
    path = tmp_path_factory.mktemp("dev-issuer")
    saved = os.environ.get("PROMPTOPT_DEV_ISSUER_DIR")
    os.environ["PROMPTOPT_DEV_ISSUER_DIR"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("PROMPTOPT_DEV_ISSUER_DIR", None)
    else:
        os.environ["PROMPTOPT_DEV_ISSUER_DIR"] = saved


@pytest.fixture(scope="session")
def stack(issuer_dir: Path) -> Iterator[Stack]:
    """The running stack."""
    with Stack(StackConfig.ephemeral()) as running:
        yield running


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the local gateway, as a user's program would be."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def token_for(issuer_dir: Path) -> Callable[..., str]:
    """Mint a token the local gateway accepts."""
    from promptopt.local.dev_issuer import mint_token

    def mint(tenant: str, role: str = "editor", subject: str = "e2e-user", **kw: object) -> str:
        return mint_token(tenant=tenant, role=role, subject=subject, issuer_dir=issuer_dir, **kw)  # type: ignore[arg-type]

    return mint
