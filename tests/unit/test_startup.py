"""A deployed function pauses the garbage collector from its first import of promptopt until it
has handled one request, task or event; anything else importing promptopt leaves the collector
alone. Each case runs in a fresh interpreter (the collector's state is per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from promptopt import startup
from tests.support import ROOT

FIRST_CALL = textwrap.dedent(
    """
    import gc, sys
    import promptopt
    paused_at_import = not gc.isenabled()
    from tests.support import load_app
    app = load_app(sys.argv[1]).test_client()
    paused_when_loaded = not gc.isenabled()
    frozen_before = gc.get_freeze_count()
    def call():
        if sys.argv[1] == "health":
            return app.get("/api/v1/health")
        if sys.argv[1] == "web_dashboard":
            return app.get("/dashboard/")
        if sys.argv[1] == "batch_chunk":  # not a chunk task: 400, and the task ends
            return app.post("/", data=b"{}", content_type="application/json")
        headers = {"ce-id": "1", "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                   "ce-source": "//pubsub", "ce-specversion": "1.0"}
        return app.post("/", json={"message": {"data": "bm90IGpzb24="}}, headers=headers)
    first = call()
    assert first.status_code in (200, 204, 400), (first.status_code, first.get_data(as_text=True))
    print("RESULT", paused_at_import, paused_when_loaded, frozen_before, gc.isenabled(),
          gc.get_freeze_count() > 0)
    call()
    print("RESULT", gc.isenabled())
    """
)


def _run(function: str, env_value: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != startup.ENV}
    if env_value is not None:
        env[startup.ENV] = env_value
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "shared"), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL, function],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The function's structured logs share stdout: keep only this script's lines.
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return [word for line in lines for word in line.split()[1:]]


@pytest.mark.parametrize("function", ["health", "batch_chunk", "experiments_evaluated", "web_dashboard"])
def test_a_deployed_function_collects_only_after_its_first_call(function: str) -> None:
    """An HTTP request, a Cloud Tasks delivery (refused as malformed), a Pub/Sub event
    (acknowledged as malformed) and a dashboard page: each is a first call handled."""
    paused_at_import, paused_when_loaded, frozen_before, enabled_after, frozen_after, enabled_later = _run(
        function, "1"
    )
    assert (paused_at_import, paused_when_loaded, frozen_before) == ("True", "True", "0")
    assert (enabled_after, frozen_after, enabled_later) == ("True", "True", "True")


def test_without_the_setting_the_collector_is_left_alone() -> None:
    assert _run("health", None) == ["False", "False", "0", "True", "False", "True"]
    assert _run("health", "0") == ["False", "False", "0", "True", "False", "True"]


def test_every_function_answers_through_an_entry_point_that_resumes_collection() -> None:
    """A function that never called `resume` would keep its collector off for its whole life."""
    entry_points = ("serve(", "serve_task(", "serve_event(", "respond(")
    for main in sorted((ROOT / "functions").glob("*/main.py")):
        source = main.read_text(encoding="utf-8")
        assert any(call in source for call in entry_points), f"{main.parent.name} answers some other way"
