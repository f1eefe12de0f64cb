"""terraform/README.md agrees with the code: environment variables, first-deploy order, lock files."""

from __future__ import annotations

import re

import pytest

from promptopt.config import PREFIX, Settings
from tests.infra.infra_hcl import REPO, TERRAFORM, Module

README = (TERRAFORM / "README.md").read_text(encoding="utf-8")
ENVIRONMENTS = ("dev", "prod")


def documented_env_vars() -> set[str]:
    section = README.split("### Environment variables every function gets", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.M))


def test_readme_lists_exactly_the_platform_env(tf: dict[str, Module]) -> None:
    root = tf["."]
    given = set(root.locals["platform_env"]) | {"PROMPTOPT_FUNCTION_URLS"}
    assert "PROMPTOPT_FUNCTION_URLS" in root.modules["function"]["platform_env"]
    assert documented_env_vars() == given


def test_the_code_reads_every_platform_env_var(tf: dict[str, Module]) -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "shared" / "promptopt").rglob("*.py"))
    for name in documented_env_vars():
        if not name.startswith(PREFIX):
            continue
        field = name.removeprefix(PREFIX).lower()
        fields = set(Settings._fields)
        assert field in fields or name in source, f"nothing reads {name}"


def test_readme_gives_the_first_deploy_order() -> None:
    section = README.split("## First deploy, in order", 1)[1].split("\n## ", 1)[0]
    steps = ["**Build**", "**APIs and service agents**", "**secrets**", "**Secret values**", "**Apply**"]
    positions = [section.index(step) for step in steps]
    assert positions == sorted(positions)
    deploy = (REPO / "scripts" / "deploy").read_text(encoding="utf-8")
    for target in re.findall(r"-target=[\w.]+", section):
        assert target in deploy


def required_providers(module: Module) -> set[str]:
    return set(re.findall(r'source\s*=\s*"(hashicorp/[\w-]+)"', module.text))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environments_declare_and_lock_every_provider(env: str, tf: dict[str, Module]) -> None:
    needed = {p for m in tf.values() for p in required_providers(m)}
    assert required_providers(tf[f"environments/{env}"]) == needed
    lock = TERRAFORM / "environments" / env / ".terraform.lock.hcl"
    if lock.is_file():
        text = lock.read_text(encoding="utf-8")
        for provider in needed:
            assert f'provider "registry.terraform.io/{provider}"' in text, f"{lock}: {provider} is not locked"
    else:  # not committed yet: the README says exactly how to produce it
        assert "They are not committed yet" in README
    for provider in needed:
        assert provider.split("/")[1] in README.split("## Provider lock files", 1)[1].split("\n## ", 1)[0]
    assert "providers lock" in README
    assert "-platform=linux_amd64 -platform=darwin_arm64" in README
