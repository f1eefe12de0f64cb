"""cloudbuild.yaml and the deploy/checkov scripts: the pipeline gates a deploy on every check."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.infra_hcl import REPO
from tests.infra.tools import require_tool


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


GCLOUD_STUB = """#!/usr/bin/env bash
echo "gcloud $*" >> "$CALLS"
case "$*" in
  "billing projects describe"*) echo True ;;
  "secrets list"*) printf '%s\\n' $SECRETS ;;
  "secrets versions list"*)
    case " $WITH_VALUE " in *" $4 "*) echo "projects/p/secrets/$4/versions/1" ;; esac ;;
esac
exit 0
"""


def deploy_sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of scripts/deploy in a minimal repository, with terraform, gcloud and scripts/build stubbed."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "deploy", repo / "scripts" / "deploy")
    env_dir = repo / "terraform" / "environments" / "dev"
    env_dir.mkdir(parents=True)
    (env_dir / "terraform.tfvars").write_text('project_id = "acme-dev"\n', encoding="utf-8")
    (env_dir / "backend.tf").write_text('bucket = "acme-dev-tfstate"\n', encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {
        bin_dir / "gcloud": GCLOUD_STUB,
        bin_dir / "terraform": '#!/usr/bin/env bash\necho "terraform $*" >> "$CALLS"\n',
        repo / "scripts" / "build": '#!/usr/bin/env bash\necho "build" >> "$CALLS"\n',
    }
    for path, text in stubs.items():
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls"), "HOME": str(tmp_path)}
    return repo, env


def run_deploy(repo: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = subprocess.run(
        [str(repo / "scripts" / "deploy"), "dev", "-auto-approve"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    calls = Path(env["CALLS"]).read_text(encoding="utf-8").splitlines()
    return result, [c for c in calls if c.startswith(("terraform", "build", "gcloud secrets"))]


def test_first_deploy_stops_after_creating_secrets_until_they_have_values(tmp_path: Path) -> None:
    repo, env = deploy_sandbox(tmp_path)
    env |= {"SECRETS": "dev-openai-api-key dev-other", "WITH_VALUE": "dev-other"}
    result, calls = run_deploy(repo, env)
    assert result.returncode == 4, result.stderr
    assert calls[0] == "build"
    assert calls[1].startswith("terraform init")
    targeted = calls[2]
    assert targeted.startswith("terraform apply")
    assert "-auto-approve" in targeted
    assert "-target=module.promptopt.module.services" in targeted
    assert "-target=module.promptopt.module.secrets" in targeted
    assert "labels.environment=dev" in calls[3]
    assert not [c for c in calls[3:] if c.startswith("terraform apply")], "functions deployed without secrets"
    assert "gcloud secrets versions add dev-openai-api-key --data-file=- --project acme-dev" in result.stderr
    assert "dev-other" not in result.stderr.split("versions add", 1)[1].split("\n", 1)[0]


def test_deploy_applies_everything_once_every_secret_has_a_value(tmp_path: Path) -> None:
    repo, env = deploy_sandbox(tmp_path)
    env |= {"SECRETS": "dev-openai-api-key", "WITH_VALUE": "dev-openai-api-key"}
    result, calls = run_deploy(repo, env)
    assert result.returncode == 0, result.stderr
    applies = [c for c in calls if c.startswith("terraform apply")]
    assert len(applies) == 2
    assert "-target=" in applies[0]
    assert "-target=" not in applies[1]
    assert applies[1] == "terraform apply -input=false -var=project_id=acme-dev -auto-approve"


def test_ci_runs_the_infra_tests_with_terraform_and_without_skips() -> None:
    build = yaml.safe_load((REPO / "cloudbuild.yaml").read_text(encoding="utf-8"))
    steps = {step["id"]: step for step in build["steps"]}
    test, binary = steps["test"], steps["terraform-binary"]
    assert "CI=true" in test["env"]
    assert "terraform-binary" in test["waitFor"]
    assert binary["name"] == "${_TERRAFORM_IMAGE}"
    assert 'cp "$$(command -v terraform)" .ci-bin/terraform' in " ".join(binary["args"])
    assert 'export PATH="$$PWD/.ci-bin:$$PATH"' in " ".join(test["args"])
    assert ".ci-bin/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(outcome):
        require_tool("terraform")
