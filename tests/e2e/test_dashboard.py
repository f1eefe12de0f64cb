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
from tests.e2e.browser import Watched, watch

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
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
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
    assert world.tenant in who
    assert "role editor" in who
    assert "editor-user" in who
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
    # The progress bar is brief for a small file: an observer records the highest value it showed.
    p.evaluate(
        """() => { window.__progress = -1; new MutationObserver(() => {
            const bar = document.querySelector('#upload-progress [role=progressbar]');
            const now = bar ? Number(bar.getAttribute('aria-valuenow')) : -1;
            window.__progress = Math.max(window.__progress, now);
        }).observe(document.body, { subtree: true, childList: true, attributes: true }); }"""
    )
    p.click("#ds-upload")
    p.wait_for_url(re.compile(r"#/datasets/ds_"))
    assert p.evaluate("window.__progress") == 100
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


def test_create_start_and_watch_an_experiment(world: World, page: Watched) -> None:
    p = page.page
    p.goto(world.url + "#/experiments/new")
    p.wait_for_selector("#experiment-form")
    p.fill("#f-name", "booleans, optimized")
    p.select_option("#f-prompt", world.prompt_id)
    p.select_option("#f-dataset", world.dataset_id)
    p.fill("#f-target-model", "sim:default")
    p.fill("#f-optimizer-model", "sim:optimizer")
    p.select_option("#f-metric", "exact_match")
    for field, value in {
        "#f-iterations": "2",
        "#f-candidates-per-iteration": "3",
        "#f-minibatch-rows": "6",
        "#f-validation-rows": "30",
        "#f-test-rows": "40",
        "#f-max-cost-usd-": "5",
    }.items():
        p.fill(field, value)
    p.wait_for_selector("#estimate-cost")
    p.wait_for_selector("#estimate table")
    assert p.inner_text("#estimate-cost").startswith("$")
    page.shot("03-new-experiment-with-estimate")
    p.click("#create-start")
    p.wait_for_url(re.compile(r"#/experiments/ex_"))
    world.experiment_id = p.url.rsplit("/", 1)[1]
    p.wait_for_selector("#run-progress [role=progressbar]")
    p.wait_for_selector("#cancel-run")  # a running run can be cancelled by an editor
    page.shot("04-experiment-running")
    started = time.monotonic()
    p.wait_for_selector("#run-progress .badge:has-text('completed')", timeout=RUN_TIMEOUT_MS)
    print(f"run finished {time.monotonic() - started:.0f} s after the page showed it")
    p.wait_for_selector("#paired-lift")
    p.wait_for_selector("#prompt-diff table.diff")
    assert p.locator("#candidates tbody tr").count() >= 2
    assert p.evaluate("document.querySelector('#score-chart').width") > 0
    diff = p.inner_text("#prompt-diff")
    assert "baseline (v1)" in diff
    assert "optimizer" in diff
    assert HOSTILE in diff  # the baseline's hostile text, shown as text
    page.shot("05-experiment-finished")
    p.goto(world.url + "#/experiments")
    p.wait_for_selector("#experiment-list .badge:has-text('completed')")
    page.shot("06-experiments")


def test_the_lineage_tree_tells_optimizer_versions_apart(world: World, page: Watched) -> None:
    p = page.page
    p.goto(world.url + f"#/prompts/{world.prompt_id}")
    p.wait_for_selector("#lineage-tree")
    assert p.locator("#lineage-tree .node.src-user").count() == 1
    optimizer = p.locator("#lineage-tree .node.src-optimizer")
    assert optimizer.count() >= 1
    assert "written by the optimizer" in (optimizer.first.get_attribute("title") or "")
    optimizer.first.click()
    p.wait_for_selector("#version-detail .pill.src-optimizer")
    assert "Provenance details" in p.inner_text("#version-detail")
    p.fill("#label-name", "candidate")
    p.click("#label-set")
    p.wait_for_selector("#labels td:has-text('candidate')")
    page.shot("07-prompt-lineage")
    p.goto(world.url + "#/prompts")
    p.wait_for_selector("table")
    page.shot("08-prompts")


def test_batch_jobs_of_the_run_are_listed_with_progress(world: World, page: Watched) -> None:
    p = page.page
    p.goto(world.url + "#/batch")
    p.wait_for_selector("#job-list table")
    page.shot("09-batch-jobs")
    p.click("#job-list tbody tr:first-child a")
    p.wait_for_selector("#job-summary [role=progressbar]")
    p.wait_for_selector("#job-results table")
    page.shot("10-batch-job")


def test_a_viewer_cannot_start_a_run(world: World) -> None:
    context = world.browser.new_context(viewport={"width": 800, "height": 900})
    try:
        viewer = watch(context.new_page())
        world.sign_in(viewer, "viewer")
        viewer.page.goto(world.url + f"#/experiments/{world.experiment_id}")
        start = viewer.page.locator("#start-run")
        start.wait_for()
        assert start.is_disabled()
        assert "needs the editor role" in (start.get_attribute("title") or "")
        assert "needs the editor role" in viewer.page.inner_text("#main")
        viewer.shot("11-viewer-narrow-window")
        viewer.assert_clean()
    finally:
        context.close()


def test_prompts_sort_rename_and_archive(world: World, token_for: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {token_for(world.tenant, 'admin')}"}
    with httpx.Client(base_url=world.stack.gateway_url + "/api/v1", headers=headers, timeout=30) as api:
        ids = {}
        for name in ("Sort A", "Sort Z"):
            made = api.post("/prompts", json={"name": name, "output_prompt": "{input}"})
            assert made.status_code == 201, made.text
            ids[name] = made.json()["prompt_id"]
        labelled = api.put(f"/prompts/{ids['Sort A']}/labels/production", json={"version": 1})
        assert labelled.status_code == 200
    context = world.browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        admin = watch(context.new_page())
        p = admin.page
        world.sign_in(admin, "admin")

        def names() -> list[str]:
            return [
                n
                for n in p.locator("#main tbody tr td:first-child a").all_inner_texts()
                if n.startswith("Sort")
            ]

        def sorted_by(sort: str) -> None:
            p.select_option("#prompt-sort", sort)
            p.wait_for_url(re.compile(f"sort={re.escape(sort)}$"))
            # The page is drawn anew (select and table together) once the sorted listing arrives.
            p.wait_for_selector(f"#prompt-sort option[value='{sort}'][selected]", state="attached")

        p.goto(world.url + "#/prompts")
        p.wait_for_selector("#prompt-sort")
        sorted_by("name")
        assert names() == ["Sort A", "Sort Z"]
        sorted_by("-name")
        assert names() == ["Sort Z", "Sort A"]

        p.goto(world.url + f"#/prompts/{ids['Sort Z']}")
        p.wait_for_selector("#prompt-save")
        p.fill("#prompt-name", "Sort Zed <b>renamed</b>")
        p.click("#prompt-save")
        p.wait_for_selector("h1:has-text('Sort Zed <b>renamed</b>')")  # as text, not markup
        assert p.locator("#main tbody tr").count() == 1  # still one version
        p.click("#prompt-archive")
        p.wait_for_selector("#archived-pill")
        admin.shot("13-prompt-settings-archived")
        p.goto(world.url + "#/prompts")
        p.wait_for_selector("#show-archived")
        assert "Sort Zed <b>renamed</b>" not in p.inner_text("#main")
        p.check("#show-archived")
        p.wait_for_selector("#main .pill.archived")
        assert "Sort Zed <b>renamed</b>" in p.inner_text("#main")

        p.goto(world.url + f"#/prompts/{ids['Sort A']}")
        p.click("#prompt-archive")
        p.wait_for_selector("#banner:not([hidden])")
        assert "still used by label 'production'" in p.inner_text("#banner")
        admin.errors[:] = [e for e in admin.errors if "409" not in e]  # the browser logs the refused fetch
        admin.assert_clean()
    finally:
        context.close()


def test_prompt_delete_asks_first_and_is_refused_while_labelled(
    world: World, token_for: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token_for(world.tenant, 'admin')}"}
    with httpx.Client(base_url=world.stack.gateway_url + "/api/v1", headers=headers, timeout=30) as api:
        ids = {}
        for name in ("Doomed", "Kept by a label"):
            made = api.post("/prompts", json={"name": name, "output_prompt": "{input}"})
            assert made.status_code == 201, made.text
            ids[name] = made.json()["prompt_id"]
        labelled = api.put(f"/prompts/{ids['Kept by a label']}/labels/production", json={"version": 1})
        assert labelled.status_code == 200
    context = world.browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        admin = watch(context.new_page())
        p = admin.page
        world.sign_in(admin, "admin")

        p.goto(world.url + f"#/prompts/{ids['Doomed']}")
        p.wait_for_selector("#prompt-delete")
        admin.accept_next_dialog()
        p.click("#prompt-delete")
        p.wait_for_url(re.compile(r"#/prompts$"))
        p.wait_for_selector("#prompt-sort")
        assert admin.accepted == ["confirm: Delete prompt Doomed with all its versions?"]
        assert "Doomed" not in p.inner_text("#main")
        assert "Kept by a label" in p.inner_text("#main")

        p.goto(world.url + f"#/prompts/{ids['Kept by a label']}")
        p.wait_for_selector("#prompt-delete")
        admin.accept_next_dialog()
        p.click("#prompt-delete")
        p.wait_for_selector("#banner:not([hidden])")
        banner = p.inner_text("#banner")
        assert "still used by label 'production'" in banner
        assert "409" in banner
        admin.errors[:] = [e for e in admin.errors if "409" not in e]  # the browser logs the refused fetch
        admin.assert_clean()
    finally:
        context.close()


def test_the_datasets_list_sorts_and_keeps_the_order_on_reload(
    world: World, token_for: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token_for(world.tenant, 'editor')}"}
    with httpx.Client(base_url=world.stack.gateway_url + "/api/v1", headers=headers, timeout=30) as api:
        for name in ("Sorted a", "Sorted z"):
            body = {
                "name": name,
                "format": "jsonl",
                "mapping": {"inputs": ["input"], "reference": "target"},
                "content": '{"input": "1 + 1", "target": "2"}\n',
            }
            made = api.post("/datasets", json=body)
            assert made.status_code == 201, made.text
    context = world.browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        viewer = watch(context.new_page())
        p = viewer.page
        world.sign_in(viewer, "viewer")

        def names() -> list[str]:
            cells = p.locator("#main tbody tr td:first-child a").all_inner_texts()
            return [n for n in cells if n.startswith("Sorted")]

        def sorted_by(sort: str) -> None:
            p.select_option("#dataset-sort", sort)
            p.wait_for_url(re.compile(f"#/datasets\\?sort={re.escape(sort)}$"))
            p.wait_for_selector(f"#dataset-sort option[value='{sort}'][selected]", state="attached")

        p.goto(world.url + "#/datasets")
        p.wait_for_selector("#dataset-sort")
        sorted_by("name")
        assert names() == ["Sorted a", "Sorted z"]
        sorted_by("-name")
        assert names() == ["Sorted z", "Sorted a"]
        p.reload()  # the order lives in the address
        p.wait_for_selector("#dataset-sort option[value='-name'][selected]", state="attached")
        assert names() == ["Sorted z", "Sorted a"]
        viewer.assert_clean()
    finally:
        context.close()


def test_errors_are_shown_in_words(world: World, page: Watched) -> None:
    p = page.page
    p.goto(world.url + "#/experiments/ex_doesnotexist")
    p.wait_for_selector("#banner:not([hidden])")
    assert "not found" in p.inner_text("#banner").lower()
    page.errors[:] = [e for e in page.errors if "404" not in e]  # the browser logs the failed fetch
    page.shot("12-error")


def test_the_batch_list_filters_pages_and_answers_304(world: World, token_for: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {token_for(world.tenant, 'viewer')}"}
    with httpx.Client(base_url=world.stack.gateway_url + "/api/v1", headers=headers, timeout=30) as api:
        first = api.get("/inference/batch", params={"page_size": 3, "kind": "evaluation"})
        assert first.status_code == 200, first.text
        page = first.json()
        assert len(page["items"]) == 3
        assert all(j["kind"] == "evaluation" and j["status"] == "completed" for j in page["items"])
        assert page["next_page_token"]
        after = api.get(
            "/inference/batch",
            params={"page_size": 3, "kind": "evaluation", "page_token": page["next_page_token"]},
        ).json()
        seen = {j["job_id"] for j in page["items"]}
        assert not seen & {j["job_id"] for j in after["items"]}
        other_filter = api.get(
            "/inference/batch",
            params={"page_size": 3, "kind": "batch", "page_token": page["next_page_token"]},
        )
        assert other_filter.status_code == 400  # a token is bound to its query
        assert api.get("/inference/batch", params={"kind": "batch"}).json()["items"] == []
        etag = first.headers["ETag"]
        again = api.get(
            "/inference/batch", params={"page_size": 3, "kind": "evaluation"}, headers={"If-None-Match": etag}
        )
        assert again.status_code == 304
        assert again.content == b""
