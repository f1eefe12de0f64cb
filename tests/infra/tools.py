"""External tools the infra tests run: skipped where they are missing, a failure in CI."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """True in CI (cloudbuild.yaml's test step sets CI=true), where every check must really run."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str) -> None:
    """Skip the calling test on a developer machine; fail it in CI, where a skip would hide a gap."""
    if in_ci():
        pytest.fail(f"{what} (CI=true: infra checks may not be skipped)")
    pytest.skip(what)


def require_tool(name: str) -> str:
    """The path of an executable on PATH, or skip (fail in CI)."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed")
    assert path is not None
    return path
