"""Fixtures for the infrastructure tests: the parsed Terraform and the manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.infra_hcl import FUNCTIONS, TERRAFORM, Module, Resource, load_module


@pytest.fixture(scope="session")
def tf_folders() -> list[Path]:
    """The root module, every child module and every environment."""
    folders = [TERRAFORM]
    folders += sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
    folders += sorted(p for p in (TERRAFORM / "environments").iterdir() if p.is_dir())
    return folders


@pytest.fixture(scope="session")
def tf(tf_folders: list[Path]) -> dict[str, Module]:
    """Parsed modules by folder path relative to terraform/ ("." is the root module)."""
    return {str(p.relative_to(TERRAFORM)): load_module(p) for p in tf_folders}


@pytest.fixture(scope="session")
def all_resources(tf: dict[str, Module]) -> list[Resource]:
    """Every resource and data block in terraform/."""
    return [r for m in tf.values() for r in m.resources]


@pytest.fixture(scope="session")
def manifests() -> dict[str, dict[str, Any]]:
    """Every functions/<name>/function.yaml, decoded as Terraform's yamldecode sees it."""
    found = {
        p.parent.name: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in FUNCTIONS.glob("*/function.yaml")
    }
    assert found, "no function manifests found"
    return found
