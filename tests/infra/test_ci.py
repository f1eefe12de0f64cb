"""cloudbuild.yaml and the deploy/checkov scripts: the pipeline gates a deploy on every check."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.infra.infra_hcl import REPO


def test_cloudbuild_runs_every_gate_before_applying() -> None:
    build = yaml.safe_load((REPO / "cloudbuild.yaml").read_text(encoding="utf-8"))
    steps = {step["id"]: step for step in build["steps"]}
    for needed in ("lint", "typecheck", "test", "build-bundles", "terraform-validate", "terraform-plan"):
        assert needed in steps, needed

    def script(step: str) -> str:
        return " ".join(steps[step]["args"])

    assert "ruff check" in script("lint")
    assert "mypy" in script("typecheck")
    assert "scripts/test" in script("test")
    assert "scripts/build" in script("build-bundles")
    assert "validate" in script("terraform-validate")
    assert "plan" in script("terraform-plan")
    apply = script("terraform-apply")
    assert '"$BRANCH_NAME" != "${_DEPLOY_BRANCH}"' in apply
    assert "apply -input=false -lock-timeout=300s tfplan" in apply
    assert set(steps["terraform-plan"]["waitFor"]) >= {"test", "terraform-validate"}
    assert steps["terraform-apply"]["waitFor"] == ["terraform-plan"]
    assert build["substitutions"]["_DEPLOY_ENV"] in ("dev", "prod")


def test_scripts_are_executable_and_parse() -> None:
    for name in ("deploy", "checkov"):
        path = REPO / "scripts" / name
        assert os.access(path, os.X_OK), f"scripts/{name} is not executable"
        subprocess.run(["bash", "-n", str(path)], check=True)


def test_deploy_rejects_unknown_environments() -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "deploy"), "staging"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown environment" in result.stderr


def test_deploy_refuses_placeholder_project(tmp_path: Path) -> None:
    # Stub CLIs so only the configuration check can stop it (nothing reaches Google Cloud).
    for tool in ("terraform", "gcloud"):
        stub = tmp_path / tool
        stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    env.pop("PROJECT_ID", None)
    result = subprocess.run(
        [str(REPO / "scripts" / "deploy"), "dev"], capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 1
    assert "set project_id in terraform/environments/dev/terraform.tfvars" in result.stderr
