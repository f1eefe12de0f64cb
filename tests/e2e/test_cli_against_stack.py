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
