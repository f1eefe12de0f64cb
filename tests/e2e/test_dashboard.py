"""The web dashboard in headless Chromium against the whole local stack.

A user signs in with the local dev sign-in, uploads a dataset from a file, creates an experiment
with the simulated models (seeing its estimate first), starts it, watches it to the end, reads the
chart and the diff, opens the prompt's lineage tree, and finds every hostile string rendered as
text. A viewer cannot start a run. Every page is free of console errors; screenshots of each are
saved under test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from promptopt.cli.datasets.bundled import bundled
from promptopt.local.stack import Stack
from tests.e2e.browser import Watched, browser, watch  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.e2e

HOSTILE = "<script>alert(1)</script>"
RUN_TIMEOUT_MS = 240_000


class World:
    """What the tests share: the tenant, its prompt and dataset, the experiment."""

    def __init__(self, stack: Stack, browser: Any) -> None:
        self.stack = stack
        self.browser = browser
        self.tenant = f"dash-{uuid.uuid4().hex[:8]}"
        self.url = stack.dashboard_url
        self.prompt_id = ""
        self.dataset_id = ""
        self.experiment_id = ""
        self.context = browser.new_context(viewport={"width": 1366, "height": 900})
        self.watched = watch(self.context.new_page())

    @property
    def page(self) -> Any:
        return self.watched.page

    def sign_in(self, watched: Watched, role: str) -> None:
        page = watched.page
        page.goto(self.url)
        page.fill("#tenant", self.tenant)
        page.select_option("#role", role)
        page.fill("#subject", f"{role}-user")
        page.click("#dev-sign-in button[type=submit]")
        page.wait_for_selector(f"#whoami >> text=role {role}")


@pytest.fixture(scope="module")
def world(stack: Stack, browser: Any, token_for: Callable[..., str]) -> Iterator[World]:
    made = World(stack, browser)
    # The prompt comes from the API (the dashboard has no prompt editor); its text is hostile.
    headers = {"Authorization": f"Bearer {token_for(made.tenant, 'editor')}"}
    body = {
        "name": f"boolean {HOSTILE}",
        "system_prompt": f"Evaluate the Boolean expression. {HOSTILE}",
        "output_prompt": "{input}\nAnswer:",
        "metadata": {"note": HOSTILE},
    }
    response = httpx.post(f"{stack.gateway_url}/api/v1/prompts", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    made.prompt_id = response.json()["prompt_id"]
    yield made
    made.context.close()


@pytest.fixture
def page(world: World) -> Iterator[Watched]:
    yield world.watched
    world.watched.assert_clean()


def test_the_shell_and_its_assets_carry_strict_headers(stack: Stack) -> None:
    shell = httpx.get(stack.dashboard_url, timeout=30)
    assert shell.status_code == 200
    csp = shell.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert shell.headers["X-Frame-Options"] == "DENY"
    assert shell.headers["X-Content-Type-Options"] == "nosniff"
    assert shell.headers["Referrer-Policy"] == "no-referrer"
    assert shell.headers["Cache-Control"] == "no-store"
    asset = re.search(r'src="(/dashboard/assets/[0-9a-f]{16}/js/app\.js)"', shell.text)
    assert asset, shell.text
    script = httpx.get(stack.gateway_url + asset.group(1), timeout=30)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in script.headers["Cache-Control"]
    assert "Content-Security-Policy" in script.headers
    again = httpx.get(
        stack.gateway_url + asset.group(1), headers={"If-None-Match": script.headers["ETag"]}, timeout=30
    )
    assert again.status_code == 304
    missing = httpx.get(stack.dashboard_url + "assets/0000000000000000/js/app.js", timeout=30)
    assert missing.status_code == 404


def test_sign_in_shows_who_i_am(world: World, page: Watched) -> None:
    world.sign_in(page, "editor")
    who = page.page.inner_text("#whoami")
    assert world.tenant in who and "role editor" in who and "editor-user" in who
    page.page.wait_for_selector("h1:has-text('Experiments')")
    page.shot("01-experiments-empty")
    # The token is in this origin's session storage only, never in the address.
    assert "eyJ" not in page.page.url


def test_upload_a_dataset_from_a_file(world: World, page: Watched, tmp_path: Path) -> None:
    source = Path(bundled("bbh/boolean_expressions")["path"]).read_text(encoding="utf-8")
    hostile = json.dumps({"input": f"{HOSTILE} and True is", "target": "False"})
    data = tmp_path / "booleans.jsonl"
    data.write_text(source + hostile + "\n", encoding="utf-8")
    p = page.page
    p.goto(world.url + "#/datasets/new")
    p.set_input_files("#ds-file", str(data))
    p.fill("#ds-name", "booleans")
    p.fill("#ds-inputs", "input")
    p.fill("#ds-reference", "target")
    p.click("#ds-upload")
    p.wait_for_selector("#upload-progress [role=progressbar]")
    p.wait_for_url(re.compile(r"#/datasets/ds_"))
    world.dataset_id = p.url.rsplit("/", 1)[1]
    p.wait_for_selector("#dataset-versions .badge:has-text('ready')", timeout=60_000)
    p.wait_for_selector("#dataset-sample table")
    page.shot("02-dataset")


def test_hostile_strings_render_as_text(world: World, page: Watched) -> None:
    p = page.page
    p.goto(world.url + f"#/datasets/{world.dataset_id}")
    p.wait_for_selector("#dataset-sample table")
    p.select_option("#sample-size", "1000")  # every row of the version
    cell = p.locator("#dataset-sample td", has_text=HOSTILE)
    cell.first.wait_for()
    assert HOSTILE in cell.first.inner_text()
    p.goto(world.url + f"#/prompts/{world.prompt_id}")
    p.wait_for_selector("#version-detail")
    assert HOSTILE in p.inner_text("#version-detail")
    assert HOSTILE in p.inner_text("h1")
    scripts = p.evaluate("document.querySelectorAll('script').length")
    assert scripts == 1  # the shell's own module; nothing injected
    assert p.evaluate("document.querySelectorAll('#main script, #main iframe, #main img').length") == 0
