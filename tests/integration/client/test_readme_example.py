"""The README's Python example runs as written, against the function apps (PROMPTOPT_* from the env)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from promptopt.client import client as client_module
from promptopt.client.http import HttpClient
from tests.integration.cli.conftest import API_URL, LocalCloud

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[3]
MARKER = "<!-- example: python-client -->"


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", text, re.DOTALL)
    assert found, f"README.md has no python block after {MARKER}"
    return found.group(1)


def test_the_readme_example_runs(
    cloud: LocalCloud, tenant: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PROMPTOPT_API_URL", API_URL)
    monkeypatch.setenv("PROMPTOPT_TOKEN", cloud.token(tenant, "editor"))

    # The only change: requests reach the function apps in-process instead of over the network.
    def in_process(*args: Any, **kw: Any) -> HttpClient:
        return HttpClient(*args, **{**kw, "transport": cloud})

    monkeypatch.setattr(client_module, "HttpClient", in_process)
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "__main__"})  # noqa: S102
    out = capsys.readouterr().out
    score = re.search(r"exact_match: (\d\.\d{3}) \[", out)
    assert score is not None, out
    assert float(score.group(1)) > 0.2  # the stated format makes the simulator's answers gradeable
    assert "gate failed ['exact_match: dropped" in out
    assert out.rstrip().endswith("prompt_not_found")
