"""Headless Chromium for the dashboard tests: the system browser (Debian's `chromium`), driven by
Playwright for Python, with console errors, page errors and dialogs recorded per page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("PROMPTOPT_TEST_ARTIFACTS", "test-artifacts")) / "dashboard"


def chromium_path() -> str | None:
    """PROMPTOPT_CHROMIUM, else Debian's chromium on PATH."""
    explicit = os.environ.get("PROMPTOPT_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The browser; in CI its absence fails, locally it skips with what to install."""
    path = chromium_path()
    if path is None:
        message = (
            "the dashboard's browser tests need Chromium: apt-get install -y chromium "
            "(scripts/prerequisites installs it when CI=true), or set PROMPTOPT_CHROMIUM"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Watched:
    """A page and what went wrong on it."""

    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    expect_dialogs: int = 0

    def accept_next_dialog(self) -> None:
        """The next dialog is the test's own doing (a confirm it means to answer yes): accept it.

        Used instead of `page.once("dialog", ...)`: the watcher's handler would dismiss it first.
        """
        self.expect_dialogs += 1

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as a test artifact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        """No console error, uncaught exception or dialog (alert) so far."""
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"
        assert not self.errors, f"console errors: {self.errors}"


def watch(page: Any) -> Watched:
    """Record console errors, page errors and dialogs (dismissed unless the test expects one)."""
    watched = Watched(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    def on_dialog(dialog: Any) -> None:
        if watched.expect_dialogs:
            watched.expect_dialogs -= 1
            watched.accepted.append(f"{dialog.type}: {dialog.message}")
            dialog.accept()
            return
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    page.on("dialog", on_dialog)
    return watched


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module.

    Closed with its module: Playwright's sync API runs an event loop on this thread while it is
    open, and later tests that start their own loop (asyncio.run) must not find it running.
    """
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        yield launched
        launched.close()
