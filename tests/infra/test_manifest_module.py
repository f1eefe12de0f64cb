"""Evaluates terraform/modules/manifest with the real terraform binary (it needs no provider).

The root module reads build/<name>/function.json, which the bundle builder writes from the
validated manifest (FunctionSpec.model_dump_json), for every functions/<name>/function.yaml. The
wrapper below reads them exactly as terraform/main.tf does, and the bundles are written with the
builder's own serialisation, so these tests run the expressions Terraform runs on deploy, for
today's manifests and for one synthetic manifest of every trigger type.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptopt.manifest import BUNDLED_SPEC_FILE, MANIFEST_FILE, FunctionSpec
from tests.infra.infra_hcl import FUNCTIONS, TERRAFORM
from tests.infra.tools import require_tool

WRAPPER = """
locals {{
  manifest_folders = toset([for f in fileset("{functions}", "*/function.yaml") : dirname(f)])
  bundled_manifests = {{
    for f in fileset("{build}", "*/function.json") :
    dirname(f) => jsondecode(file("{build}/${{f}}")) if contains(local.manifest_folders, dirname(f))
  }}
}}

module "manifest" {{
  source           = "{source}"
  functions        = local.bundled_manifests
  manifest_folders = local.manifest_folders
  environment      = "{environment}"
  base_queues      = {{ inference = {{ max_attempts = 10 }} }}
}}

output "all" {{
  value = module.manifest
}}
"""

SYNTHETIC: dict[str, dict[str, Any]] = {
    "on_batch": {
        "trigger": {"type": "pubsub", "topic": "batch-completed"},
        "secrets": [{"env": "OPENAI_API_KEY", "secret": "openai-api-key"}],
        "roles": [{"role": "roles/cloudtasks.enqueuer", "why": "fans work out to the inference queue"}],
    },
    "ingest": {
        "trigger": {"type": "storage", "bucket": "datasets"},
        "resources": {"memory": "1Gi", "timeout_s": 540},
    },
    "run_chunk": {"trigger": {"type": "task", "queue": "inference"}},
    "grade": {"trigger": {"type": "task", "queue": "grading"}},
    "start_due_runs_for_every_tenant_now": {
        "trigger": {
            "type": "scheduler",
            "schedule": "0 3 * * *",
            "topic": "nightly",
            "time_zone": "Europe/Paris",
        },
        "env": {"PROMPTOPT_BATCH": "50"},
    },
}


@pytest.fixture(scope="module")
def terraform_bin() -> str:
    return require_tool("terraform")


def write_manifest(folder: Path, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    (folder / name).mkdir(parents=True)
    doc = {"name": name, "description": f"{name} (test)", "auth": {"mode": "internal"}, "dependencies": []}
    doc.update(extra)
    (folder / name / MANIFEST_FILE).write_text(yaml.safe_dump(doc), encoding="utf-8")
    return doc


def write_bundle(build: Path, name: str, spec: FunctionSpec | dict[str, Any]) -> None:
    """What scripts/build writes into build/<name>/ for Terraform (promptopt.tooling.build._stage)."""
    (build / name).mkdir(parents=True, exist_ok=True)
    text = spec.model_dump_json(indent=2) if isinstance(spec, FunctionSpec) else json.dumps(spec)
    (build / name / BUNDLED_SPEC_FILE).write_text(text + "\n", encoding="utf-8")


def build_all(functions: Path, build: Path) -> None:
    for manifest in sorted(functions.glob(f"*/{MANIFEST_FILE}")):
        spec = FunctionSpec.model_validate(yaml.safe_load(manifest.read_text(encoding="utf-8")))
        write_bundle(build, manifest.parent.name, spec)


def evaluate(
    terraform: str, tmp_path: Path, functions: Path, build: Path, environment: str = "prod"
) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "wrapper"
    work.mkdir()
    source = os.path.relpath(TERRAFORM / "modules" / "manifest", work)
    (work / "main.tf").write_text(
        WRAPPER.format(
            source=source, functions=functions.as_posix(), build=build.as_posix(), environment=environment
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    tf = [terraform, f"-chdir={work}"]
    subprocess.run([*tf, "init", "-input=false", "-backend=false"], check=True, capture_output=True, env=env)
    applied = subprocess.run(
        [*tf, "apply", "-input=false", "-auto-approve", "-no-color"], capture_output=True, text=True, env=env
    )
    if applied.returncode != 0:
        return applied
    return subprocess.run(
        [*tf, "output", "-json", "all"], capture_output=True, text=True, env=env, check=True
    )


def outputs(
    terraform: str, tmp_path: Path, functions: Path, build: Path, environment: str = "prod"
) -> dict[str, Any]:
    result = evaluate(terraform, tmp_path, functions, build, environment)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def consumed_topics(manifests: dict[str, dict[str, Any]]) -> set[str]:
    return {
        m["trigger"]["topic"] for m in manifests.values() if m["trigger"]["type"] in ("pubsub", "scheduler")
    }


def test_todays_manifests(terraform_bin: str, tmp_path: Path) -> None:
    build = tmp_path / "build"
    build_all(FUNCTIONS, build)
    out = outputs(terraform_bin, tmp_path, FUNCTIONS, build)
    folders = sorted(p.parent.name for p in FUNCTIONS.glob(f"*/{MANIFEST_FILE}"))
    assert sorted(out["functions"]) == folders
    manifests = {
        f: yaml.safe_load((FUNCTIONS / f / MANIFEST_FILE).read_text(encoding="utf-8")) for f in folders
    }
    assert sorted(out["http_functions"]) == [f for f in folders if manifests[f]["trigger"]["type"] == "http"]
    assert sorted(out["task_functions"]) == [f for f in folders if manifests[f]["trigger"]["type"] == "task"]
    # Every topic has a consumer among the manifests, and every consumed topic exists.
    assert set(out["topics"]) == consumed_topics(manifests)
    assert list(out["queues"]) == ["inference"]
    for job in out["schedules"].values():
        assert job["topic"] in consumed_topics(manifests)
    mounted = {s["secret"] for m in manifests.values() for s in m.get("secrets") or []}
    assert set(out["secret_ids"]) == mounted
    for folder, spec in out["functions"].items():
        manifest = manifests[folder]
        assert spec["deploy_name"] == "prod-" + folder.replace("_", "-")
        assert len(spec["account_id"]) <= 30
        assert spec["entry_point"] == manifest.get("entry_point", "handle")
        assert spec["roles"] == {r["role"]: r["why"] for r in manifest.get("roles") or []}
        assert spec["resources"]["memory"] == manifest.get("resources", {}).get("memory", "256Mi")
        assert spec["bucket_roles"] == {
            f"{r['bucket']}/{r['role']}": r for r in manifest.get("bucket_roles") or []
        }
        assert spec["sign_urls"] == manifest.get("sign_urls", False)


def test_every_trigger_type(terraform_bin: str, tmp_path: Path) -> None:
    functions, build = tmp_path / "functions", tmp_path / "build"
    docs = {name: write_manifest(functions, name, extra) for name, extra in SYNTHETIC.items()}
    build_all(functions, build)
    out = outputs(terraform_bin, tmp_path, functions, build, environment="dev")
    specs = out["functions"]
    assert out["http_functions"] == []
    assert sorted(out["task_functions"]) == ["grade", "run_chunk"]
    assert out["topics"] == sorted(consumed_topics(docs)) == ["batch-completed", "nightly"]
    assert set(out["queues"]) == {"inference", "grading"}
    assert out["queues"]["inference"]["max_attempts"] == 10  # platform settings win
    assert out["schedules"] == {
        "fn-start-due-runs-for-every-tenant-now": {
            "schedule": "0 3 * * *",
            "time_zone": "Europe/Paris",
            "topic": "nightly",
        }
    }
    assert out["secret_ids"] == ["openai-api-key"]
    assert out["has_storage_triggers"] is True
    assert specs["on_batch"]["topic"] == "batch-completed"
    assert specs["on_batch"]["secrets"] == {
        "OPENAI_API_KEY": {"secret": "openai-api-key", "version": "latest"}
    }
    assert specs["ingest"]["bucket"] == "datasets"
    assert specs["ingest"]["event_type"] == "google.cloud.storage.object.v1.finalized"
    assert specs["ingest"]["resources"] == {
        "memory": "1Gi",
        "cpu": "1",
        "timeout_s": 540,
        "min_instances": 0,
        "max_instances": 10,
        "concurrency": 80,
    }
    assert specs["run_chunk"]["queue"] == "inference"
    assert specs["run_chunk"]["topic"] is None
    long = specs["start_due_runs_for_every_tenant_now"]
    assert long["env"] == {"PROMPTOPT_BATCH": "50"}
    assert len(long["account_id"]) <= 30
    assert long["account_id"].startswith("dev-fn-start-due-runs")


def test_an_unbuilt_manifest_fails_the_plan(terraform_bin: str, tmp_path: Path) -> None:
    # Without its function.json Terraform would plan to destroy the function; it must stop instead.
    functions, build = tmp_path / "functions", tmp_path / "build"
    write_manifest(functions, "built", {"trigger": {"type": "task", "queue": "inference"}})
    write_manifest(functions, "not_built", {"trigger": {"type": "task", "queue": "inference"}})
    build_all(functions, build)
    (build / "not_built" / BUNDLED_SPEC_FILE).unlink()
    result = evaluate(terraform_bin, tmp_path, functions, build)
    assert result.returncode != 0
    assert "No build/<name>/function.json for not_built: run scripts/build" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"roles": [{"role": "roles/editor", "why": "convenient"}]}, "Primitive roles"),
        ({"trigger": {"type": "carrier-pigeon"}}, "trigger.type must be one of"),
        ({"name": "other"}, "name must equal its folder name"),
    ],
)
def test_bad_bundles_fail_the_plan(
    terraform_bin: str, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    # The builder refuses most of these; Terraform checks again in case a bundle was edited by hand.
    functions, build = tmp_path / "functions", tmp_path / "build"
    doc = write_manifest(functions, "bad", {"trigger": {"type": "task", "queue": "inference"}})
    spec = json.loads(FunctionSpec.model_validate(doc).model_dump_json())
    write_bundle(build, "bad", {**spec, **change})
    result = evaluate(terraform_bin, tmp_path, functions, build)
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())
