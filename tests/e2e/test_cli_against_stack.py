"""The CLI, run as a user runs it, against the stack through the gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptopt.local.stack import Stack

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("promptopt"))


def run(
    stack: Stack, issuer_dir: Path, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTOPT_API_URL": stack.gateway_url, "PROMPTOPT_DEV_ISSUER_DIR": str(issuer_dir)}
    if token:
        env["PROMPTOPT_TOKEN"] = token
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_cli_walkthrough(stack: Stack, issuer_dir: Path) -> None:
    minted = run(stack, issuer_dir, "auth", "dev-token", "--tenant", "cli-e2e", "--role", "editor")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()

    created = run(
        stack,
        issuer_dir,
        "--json",
        "prompts",
        "create",
        "--name",
        "cli",
        "--output-prompt",
        "Q: {input}",
        "--metadata",
        "team=ml",
        token=token,
    )
    assert created.returncode == 0, created.stderr
    pid = json.loads(created.stdout)["prompt_id"]

    updated = run(
        stack,
        issuer_dir,
        "prompts",
        "update",
        pid,
        "--system-prompt",
        "Be exact.",
        "--message",
        "tighten",
        token=token,
    )
    assert updated.returncode == 0, updated.stderr
    stale = run(
        stack,
        issuer_dir,
        "prompts",
        "update",
        pid,
        "--base-version",
        "1",
        "--system-prompt",
        "x",
        token=token,
    )
    assert stale.returncode == 2
    assert "version_mismatch" in stale.stderr

    labelled = run(stack, issuer_dir, "prompts", "label", pid, "production", "--version", "2", token=token)
    assert labelled.returncode == 0, labelled.stderr
    got = run(stack, issuer_dir, "--json", "prompts", "get", pid, "--label", "production", token=token)
    assert json.loads(got.stdout)["system_prompt"] == "Be exact."

    versions = run(stack, issuer_dir, "prompts", "versions", pid, token=token)
    assert versions.returncode == 0
    assert "tighten" in versions.stdout
    listed = run(stack, issuer_dir, "--json", "prompts", "list", "--all", token=token)
    assert [p["prompt_id"] for p in json.loads(listed.stdout)["items"]] == [pid]

    anonymous = run(stack, issuer_dir, "prompts", "list")
    assert anonymous.returncode == 2
    assert "401" in anonymous.stderr


def test_cli_evaluate(stack: Stack, issuer_dir: Path, tmp_path: Path) -> None:
    token = run(
        stack, issuer_dir, "auth", "dev-token", "--tenant", "cli-eval", "--role", "viewer"
    ).stdout.strip()
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"prediction": "so the answer is 42", "reference": "... #### 42"},
                {"prediction": "#### 7", "reference": "... #### 8"},
            ]
        )
    )
    human = run(stack, issuer_dir, "evaluate", str(rows), "--metric", "numeric", token=token)
    assert human.returncode == 0, human.stderr
    assert "numeric" in human.stdout
    scripted = run(
        stack, issuer_dir, "--json", "evaluate", str(rows), "--metric", "numeric", "--rows", token=token
    )
    result = json.loads(scripted.stdout)
    assert result["metrics"][0]["mean"] == 0.5
    assert [r["scores"]["numeric"] for r in result["rows"]] == [1.0, 0.0]
    bad = run(stack, issuer_dir, "evaluate", str(rows), "--metric", "bleu", token=token)
    assert bad.returncode == 2
    assert "unknown metric" in bad.stderr


def test_cli_complete_with_the_simulator(stack: Stack, issuer_dir: Path) -> None:
    token = run(
        stack, issuer_dir, "auth", "dev-token", "--tenant", "cli-infer", "--role", "editor"
    ).stdout.strip()
    created = run(stack, issuer_dir, "--json", "prompts", "create", "--output-prompt",
                  "Question: {input}\nEnd with '#### <number>'.", token=token)  # fmt: skip
    pid = json.loads(created.stdout)["prompt_id"]
    done = run(stack, issuer_dir, "complete", "--prompt-id", pid, "--input", "What is 2 + 3?", token=token)
    assert done.returncode == 0, done.stderr
    assert "(simulator)" in done.stderr
    scripted = run(stack, issuer_dir, "--json", "complete", "--output-prompt", "Q: {input}", "--input", "hi",
                   token=token)  # fmt: skip
    result = json.loads(scripted.stdout)
    assert result["simulated"] is True
    assert result["usage"]["input_tokens"] > 0
    unknown = run(stack, issuer_dir, "complete", "--output-prompt", "{input}", "--input", "x",
                  "--model", "nope:x", token=token)  # fmt: skip
    assert unknown.returncode == 2
    assert "unknown_model" in unknown.stderr
