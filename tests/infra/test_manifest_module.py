"""Evaluates terraform/modules/manifest with the real terraform binary (it needs no provider).

The root module reads functions/*/function.yaml with fileset + yamldecode exactly as the wrapper
below does, so these tests run the same expressions Terraform runs on deploy, for today's
manifests and for one synthetic manifest of every trigger type.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.infra_hcl import FUNCTIONS, TERRAFORM

TERRAFORM_BIN = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM_BIN is None, reason="terraform binary not installed")

WRAPPER = """
module "manifest" {{
  source = "{source}"
  manifests = {{
    for f in fileset("{functions}", "*/function.yaml") : dirname(f) => yamldecode(file("{functions}/${{f}}"))
  }}
  environment   = "{environment}"
  base_topics   = ["batch-completed", "evaluation-completed", "proposal-ready", "schedule-tick"]
  base_queues   = {{ inference = {{ max_attempts = 10 }} }}
  base_secrets  = ["openai-api-key", "signing-key"]
  schedule_tick = {{ schedule = "*/5 * * * *" }}
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
        "env": {"PROMPTOPT_BATCH": 50},
    },
}


def write_manifest(folder: Path, name: str, extra: dict[str, Any]) -> None:
    (folder / name).mkdir(parents=True)
    doc = {"name": name, "description": f"{name} (test)", "auth": {"mode": "internal"}, "dependencies": []}
    doc.update(extra)
    (folder / name / "function.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def evaluate(tmp_path: Path, functions: Path, environment: str = "prod") -> subprocess.CompletedProcess[str]:
    work = tmp_path / "wrapper"
    work.mkdir()
    source = os.path.relpath(TERRAFORM / "modules" / "manifest", work)
    (work / "main.tf").write_text(
        WRAPPER.format(source=source, functions=functions.as_posix(), environment=environment),
        encoding="utf-8",
    )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    tf = [str(TERRAFORM_BIN), f"-chdir={work}"]
    subprocess.run([*tf, "init", "-input=false", "-backend=false"], check=True, capture_output=True, env=env)
    applied = subprocess.run(
        [*tf, "apply", "-input=false", "-auto-approve", "-no-color"], capture_output=True, text=True, env=env
    )
    if applied.returncode != 0:
        return applied
    return subprocess.run(
        [*tf, "output", "-json", "all"], capture_output=True, text=True, env=env, check=True
    )


def outputs(tmp_path: Path, functions: Path, environment: str = "prod") -> dict[str, Any]:
    result = evaluate(tmp_path, functions, environment)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_todays_manifests(tmp_path: Path) -> None:
    out = outputs(tmp_path, FUNCTIONS)
    folders = sorted(p.parent.name for p in FUNCTIONS.glob("*/function.yaml"))
    assert sorted(out["functions"]) == folders
    manifests = {
        f: yaml.safe_load((FUNCTIONS / f / "function.yaml").read_text(encoding="utf-8")) for f in folders
    }
    assert sorted(out["http_functions"]) == [f for f in folders if manifests[f]["trigger"]["type"] == "http"]
    assert out["topics"] == ["batch-completed", "evaluation-completed", "proposal-ready", "schedule-tick"]
    assert list(out["queues"]) == ["inference"]
    assert out["schedules"] == {
        "schedule-tick": {"schedule": "*/5 * * * *", "time_zone": "Etc/UTC", "topic": "schedule-tick"}
    }
    for folder, spec in out["functions"].items():
        manifest = yaml.safe_load((FUNCTIONS / folder / "function.yaml").read_text(encoding="utf-8"))
        assert spec["deploy_name"] == "prod-" + folder.replace("_", "-")
        assert len(spec["account_id"]) <= 30
        assert spec["entry_point"] == manifest.get("entry_point", "handle")
        assert spec["roles"] == {r["role"]: r["why"] for r in manifest.get("roles") or []}
        assert spec["resources"]["memory"] == manifest.get("resources", {}).get("memory", "256Mi")
        assert spec["bucket_roles"] == {
            f"{r['bucket']}/{r['role']}": r for r in manifest.get("bucket_roles") or []
        }
        assert spec["sign_urls"] == manifest.get("sign_urls", False)


def test_every_trigger_type(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    for name, extra in SYNTHETIC.items():
        write_manifest(functions, name, extra)
    out = outputs(tmp_path, functions, environment="dev")
    specs = out["functions"]
    assert out["http_functions"] == []
    assert out["topics"][-1] == "nightly"
    assert set(out["queues"]) == {"inference", "grading"}
    assert out["queues"]["inference"] == {"max_attempts": 10}  # platform settings win
    assert out["schedules"]["fn-start-due-runs-for-every-tenant-now"] == {
        "schedule": "0 3 * * *",
        "time_zone": "Europe/Paris",
        "topic": "nightly",
    }
    assert out["secret_ids"] == ["openai-api-key", "signing-key"]
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
    long = specs["start_due_runs_for_every_tenant_now"]
    assert long["env"] == {"PROMPTOPT_BATCH": "50"}
    assert len(long["account_id"]) <= 30
    assert long["account_id"].startswith("dev-fn-start-due-runs")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"roles": [{"role": "roles/editor", "why": "convenient"}]}, "Primitive roles"),
        ({"trigger": {"type": "carrier-pigeon"}}, "trigger.type must be one of"),
    ],
)
def test_bad_manifests_fail_the_plan(tmp_path: Path, extra: dict[str, Any], message: str) -> None:
    functions = tmp_path / "functions"
    write_manifest(functions, "bad", {"trigger": {"type": "task", "queue": "inference"}, **extra})
    result = evaluate(tmp_path, functions)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
