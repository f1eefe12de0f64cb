"""Cold start of every HTTP function: process start -> first 200, as a ratio to a baseline.

The baseline is a function that imports only functions_framework and google.cloud.firestore and
reads one document on its first request (the same first-request work our endpoints do), measured
in the same run on the same emulator. Each function runs from its staged bundle, as deployed.

On a shared machine the load drifts within seconds, so each start of a function is paired with a
start of the baseline just before it: the ratio is the median of those paired ratios. The CPU
time of the function's processes up to the first answer (user + system, from /proc) is printed
beside it: it moves much less with the machine's load than the wall time does. A reference row,
the baseline that also validates a small body with a pydantic model, shows the least a function
taking a body can reach.

With --profile DIR, each function (and the baseline) also starts once in one process after the
warm-up, with the interpreter's import log on (see first_request_profile.py): a table gives the CPU
to load each and to answer once, and where its import time beyond the baseline's goes.

Usage: scripts/bench/cold-start [--runs N] [--only NAME,...] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from promptopt.auth import encode_userinfo
from promptopt.local import wiring
from promptopt.local.dev_signer import write_dev_signing_key
from promptopt.local.emulators import EmulatorName, Emulators
from promptopt.local.ports import free_port
from promptopt.manifest import RUNTIME_ENV, FunctionSpec, load_manifest, repo_root
from promptopt.tooling.build import build_all

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deployed_packages import closure, guard_dir, read_requirements

BASELINE = """
import functions_framework
from google.cloud import firestore

_client = None

@functions_framework.http
def handle(request):
    global _client
    if _client is None:
        _client = firestore.Client()
    _client.collection("bench").document("probe").get()
    return "ok"
"""

TENANT = "bench"
PROJECT = "promptopt-bench"
BASELINE_PACKAGES = ["functions-framework", "google-cloud-firestore"]

# A reference row, measured like a function: the baseline that also validates a small JSON body
# with a pydantic model, as every function taking a body does before any work of its own. Its
# ratio is the least such a function can reach (pydantic's import and one schema build).
PYDANTIC_REFERENCE = """
import functions_framework
from google.cloud import firestore
from pydantic import BaseModel, Field


class Body(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    tags: list[str] = []
    limit: int | None = Field(default=None, ge=1)


_client = None

@functions_framework.http
def handle(request):
    global _client
    Body.model_validate_json(request.get_data())
    if _client is None:
        _client = firestore.Client()
    _client.collection("bench").document("probe").get()
    return "ok"
"""
PYDANTIC_REFERENCE_NAME = "reference (+pydantic)"
PYCACHE = tempfile.mkdtemp(prefix="promptopt-bench-pycache-")
HEADERS = {"X-Apigateway-Api-Userinfo": encode_userinfo({"sub": "bench", "tenant": TENANT, "role": "admin"})}
# Where chunk tasks would go. The queues are paused, so nothing is ever delivered there.
CHUNK_URL = "http://127.0.0.1:9/batch-chunk"


def wire(env: dict[str, str], specs: Sequence[FunctionSpec]) -> dict[str, str]:
    """The topics and queues the local stack lays out (promptopt.local.wiring), with every queue paused.

    The topics get no push subscriptions and the queues dispatch nothing, so a run's first step
    is published and a job's chunks are enqueued, as the endpoints do, and then nothing acts on them:
    runs stay queued and jobs stay running. Returns the `PROMPTOPT_*` variables that name them.
    """
    from promptopt import clients, config

    os.environ.update(env)
    config.reset()
    clients.reset()
    plan = wiring.plan(specs, project=PROJECT)
    wiring.apply(plan, [], {}, pubsub_host=env["PUBSUB_EMULATOR_HOST"], storage_url=None)
    for queue in plan.queues.values():
        clients.tasks_client().pause_queue(name=queue)
    return {
        "PROMPTOPT_TOPICS": json.dumps(plan.topics, sort_keys=True),
        "PROMPTOPT_QUEUES": json.dumps(plan.queues, sort_keys=True),
        "PROMPTOPT_FUNCTION_URLS": json.dumps({"batch_chunk": CHUNK_URL}),
    }


def seed(env: dict[str, str]) -> tuple[str, str]:
    """A prompt with a label so every route has something to answer 200 with, and one to archive."""
    os.environ.update(env)
    from promptopt import clients, config
    from promptopt.auth import principal_from_claims
    from promptopt.prompts import service as prompts
    from promptopt.prompts.models import PromptCreate

    config.reset()
    clients.reset()
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    created = prompts.create_prompt(principal=who, body=PromptCreate(output_prompt="Q: {input}"))
    prompts.set_label(principal=who, prompt_id=created.prompt_id, label="production", version=1)
    spare = prompts.create_prompt(principal=who, body=PromptCreate(output_prompt="A: {input}"))
    return created.prompt_id, spare.prompt_id


def seed_access(env: dict[str, str], folder: Path) -> dict[str, str]:
    """An API key to exchange and revoke, the exchange's signing key and the members registry."""
    from promptopt import clients, config
    from promptopt.access import keys
    from promptopt.auth import principal_from_claims
    from promptopt.local import dev_issuer

    key_file = dev_issuer.write_api_token_trust(folder / "trust.json", folder / "issuer")
    env.update({
        "PROMPTOPT_API_TOKEN_ISSUER": dev_issuer.API_TOKEN_ISSUER,
        "PROMPTOPT_API_TOKEN_AUDIENCE": dev_issuer.API_TOKEN_AUDIENCE,
        "PROMPTOPT_API_TOKEN_KEY_FILE": str(key_file),
        "PROMPTOPT_DEV_MEMBERS_FILE": str(folder / "members.json"),
    })  # fmt: skip
    os.environ.update(env)
    config.reset()
    clients.reset()
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    revoked = keys.create_key(principal=who, body=keys.NewKey("revoked", "viewer"))
    used = keys.create_key(principal=who, body=keys.NewKey("exchanged", "viewer"))
    return {"key_id": revoked["key_id"], "secret": used["secret"]}


def seed_world(env: dict[str, str], pid: str) -> dict[str, str]:
    """A ready dataset (a bundled BBH task, ingested from the storage emulator) and an experiment on it."""
    from promptopt import clients, config
    from promptopt.auth import principal_from_claims
    from promptopt.cli.datasets.bundled import bundled
    from promptopt.config import settings
    from promptopt.datasets import ingest, uploads
    from promptopt.datasets.models import DatasetCreate
    from promptopt.experiments import service as experiments
    from promptopt.experiments.models import ExperimentCreate

    os.environ.update(env)
    config.reset()
    clients.reset()
    bucket = clients.storage_client().bucket(settings().datasets_bucket)
    if not bucket.exists():
        bucket.create()
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    entry = bundled("bbh/boolean_expressions")
    created = uploads.create_dataset(
        principal=who,
        body=DatasetCreate.model_validate(
            {
                "name": "bench",
                "format": entry["format"],
                "mapping": entry["mapping"],
                "content": Path(entry["path"]).read_text(encoding="utf-8"),
            }
        ),
        idempotency_key=None,
    )
    blob = bucket.get_blob(created["version"]["source"].split("/", 3)[3])
    ingest.handle_finalized(
        ingest.FinalizedObject(
            bucket=blob.bucket.name,
            name=blob.name,
            generation=str(blob.generation),
            size=blob.size,
            metadata=blob.metadata or {},
        )
    )
    dataset_id = str(created["dataset"]["dataset_id"])
    experiment = experiments.create_experiment(
        principal=who,
        body=ExperimentCreate.model_validate(experiment_body(pid, dataset_id)),
    )
    return {"dataset_id": dataset_id, "experiment_id": str(experiment["experiment_id"])}


JOB_BODY = {
    "output_prompt": "Q: {input}",
    "rows": [{"inputs": {"input": "2 + 2?"}, "reference": "4"}],
    "model": "sim:default",
}


EVALUATION_BODY = {**JOB_BODY, "metrics": [{"name": "exact_match"}]}


def new_job(env: dict[str, str]) -> str:
    """A running batch job, created as POST /inference/batch creates it.

    Its chunk waits in the paused queue (see `wire`): the job stays running, which is all that
    reading, listing and cancelling it need.
    """
    from promptopt import clients, config
    from promptopt.auth import principal_from_claims
    from promptopt.batch import jobs
    from promptopt.batch.models import BatchCreate

    os.environ.update(env)
    config.reset()
    clients.reset()
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    return str(jobs.create_job(principal=who, body=BatchCreate.model_validate(JOB_BODY))["job_id"])


def scored_job(env: dict[str, str]) -> str:
    """An evaluation job taken to its per-row scores by the library, as its task and message would.

    Created as POST /inference/evaluate creates it; its one chunk (held in the paused queue) is
    run here as batch_chunk runs a delivered task, and the job is then scored as batch_score
    scores it on `batch-completed` (nothing subscribes to the topic here).
    """
    from promptopt.auth import principal_from_claims
    from promptopt.batch import evaluation_step, jobs, runner
    from promptopt.batch.models import EvaluationCreate

    os.environ.update(env)
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    job_id = str(
        jobs.create_job(principal=who, body=EvaluationCreate.model_validate(EVALUATION_BODY))["job_id"]
    )
    report = runner.run_chunk(runner.Delivery(tenant=TENANT, job_id=job_id, chunk=0))
    if report.status != "done":
        raise RuntimeError(f"chunk 0 of {job_id}: {report.status} {report.reason}")
    done = evaluation_step.handle_batch_completed({"tenant": TENANT, "job_id": job_id})
    if done != "evaluated":
        raise RuntimeError(f"scoring {job_id}: {done}")
    return job_id


def retire_jobs(keep: str) -> None:
    """Cancel the running jobs earlier starts created (a tenant may run 5 at once), but `keep`."""
    from promptopt.auth import principal_from_claims
    from promptopt.batch import jobs, listing
    from promptopt.batch.read_models import BatchListQuery

    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    query = BatchListQuery.model_validate({"status": "running", "page_size": 100})
    for job in listing.list_jobs(principal=who, query=query)["items"]:
        if job["job_id"] != keep:
            jobs.cancel_job(principal=who, job_id=job["job_id"])


def retire_runs(experiment_ids: list[str]) -> None:
    """Cancel the active runs of these experiments (a tenant may have 3 at once)."""
    from promptopt.auth import principal_from_claims
    from promptopt.experiments import run_view, runs
    from promptopt.experiments.models import ACTIVE_RUN_STATUSES
    from promptopt.http.models import PageQuery

    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    for experiment_id in experiment_ids:
        for run in runs.list_runs(principal=who, experiment_id=experiment_id, query=PageQuery()).items:
            if run.status in ACTIVE_RUN_STATUSES:
                run_view.cancel_run(principal=who, experiment_id=experiment_id, run_id=run.run_id)


def new_run(env: dict[str, str], experiment_id: str) -> str:
    """A run of the seeded experiment, started as POST .../start starts one.

    Its first step is published to a topic nothing subscribes to here (see `wire`): the run stays
    queued, enough to read, measure and cancel it.
    """
    from promptopt import clients, config
    from promptopt.auth import principal_from_claims
    from promptopt.experiments import runs

    os.environ.update(env)
    config.reset()
    clients.reset()
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    return runs.start_run(principal=who, experiment_id=experiment_id, body=None).run_id


def new_prompt(env: dict[str, str]) -> str:
    """A fresh prompt to delete."""
    from promptopt.auth import principal_from_claims
    from promptopt.prompts import service as prompts
    from promptopt.prompts.models import PromptCreate

    os.environ.update(env)
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    return prompts.create_prompt(principal=who, body=PromptCreate(output_prompt="D: {input}")).prompt_id


def new_experiment(env: dict[str, str], pid: str, dataset_id: str) -> str:
    """A fresh experiment to delete."""
    from promptopt.auth import principal_from_claims
    from promptopt.experiments import service as experiments
    from promptopt.experiments.models import ExperimentCreate

    os.environ.update(env)
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    body = ExperimentCreate.model_validate(experiment_body(pid, dataset_id))
    return str(experiments.create_experiment(principal=who, body=body)["experiment_id"])


def new_dataset(env: dict[str, str]) -> str:
    """A fresh dataset to delete (created, its upload never made: deleting does not need one)."""
    from promptopt.auth import principal_from_claims
    from promptopt.datasets import uploads
    from promptopt.datasets.models import DatasetCreate

    os.environ.update(env)
    who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
    created = uploads.create_dataset(
        principal=who, body=DatasetCreate.model_validate(DATASET_BODY), idempotency_key=None
    )
    return str(created["dataset"]["dataset_id"])


DATASET_BODY = {
    "name": "bench-new",
    "format": "jsonl",
    "mapping": {"inputs": ["input"], "reference": "output"},
    "content": "".join(f'{{"input": "{n} + 1", "output": "{n + 1}"}}\n' for n in range(40)),
}


def experiment_body(pid: str, dataset_id: str) -> dict[str, Any]:
    """A small experiment over the seeded prompt and dataset."""
    return {
        "name": "bench",
        "prompt": {"prompt_id": pid},
        "dataset": {"dataset_id": dataset_id},
        "metric": {"name": "exact_match"},
        "optimizer": {"max_iterations": 2, "candidates_per_iteration": 4, "minibatch_size": 4},
    }


def recipe(
    name: str, pid: str, access: dict[str, str], spare: str = "", world: dict[str, str] | None = None
) -> tuple[str, str, dict[str, Any]] | None:
    """(method, path, httpx kwargs) of a request that answers 2xx for each function (None: none yet).

    `spare` is a second prompt that archive and unarchive toggle (both are no-ops when repeated);
    `world` names the seeded dataset and experiment (seed_world).
    """
    world = world or {
        "dataset_id": "none",
        "experiment_id": "none",
        "job_id": "none",
        "run_id": "none",
        "scored_job_id": "none",
    }
    dataset, experiment, job = (
        f"/api/v1/datasets/{world['dataset_id']}",
        f"/api/v1/experiments/{world['experiment_id']}",
        f"/api/v1/inference/batch/{world['job_id']}",
    )
    run = f"{experiment}/runs/{world['run_id']}"
    recipes: dict[str, tuple[str, str, dict[str, Any]]] = {
        "datasets_get": ("GET", dataset, {}),
        "datasets_create": ("POST", "/api/v1/datasets", {"json": DATASET_BODY}),
        "datasets_version_create": (
            "POST",
            f"{dataset}/versions",
            {"json": {"content": DATASET_BODY["content"]}},
        ),
        # The path of each delete and cancel is a fresh resource's, made just before each start.
        "datasets_delete": ("DELETE", "/api/v1/datasets/{new}", {}),
        "experiments_create": (
            "POST",
            "/api/v1/experiments",
            {"json": experiment_body(pid, world["dataset_id"])},
        ),
        "experiments_delete": ("DELETE", "/api/v1/experiments/{new}", {}),
        "experiments_run_get": ("GET", run, {}),
        "experiments_metrics": ("GET", f"{experiment}/metrics", {}),
        "experiments_run_cancel": ("POST", "/api/v1/experiments/{new}/cancel", {}),
        "batch_get": ("GET", job, {}),
        "batch_results": ("GET", f"{job}/results", {}),
        "batch_cancel": ("POST", "/api/v1/inference/batch/{new}/cancel", {}),
        # Each start on a fresh experiment: an experiment has one active run at a time.
        "experiments_start": ("POST", "/api/v1/experiments/{new}/start", {}),
        "batch_create": ("POST", "/api/v1/inference/batch", {"json": JOB_BODY}),
        "batch_evaluation_create": ("POST", "/api/v1/inference/evaluate", {"json": EVALUATION_BODY}),
        "batch_scores": ("GET", f"/api/v1/inference/batch/{world['scored_job_id']}/scores", {}),
        "health_ready": ("GET", "/api/v1/health/ready", {}),
        "prompts_delete": ("DELETE", "/api/v1/prompts/{new}", {}),
        "datasets_rows": ("GET", f"{dataset}/rows", {}),
        "datasets_sample": ("GET", f"{dataset}/sample", {}),
        "experiments_get": ("GET", experiment, {}),
        "experiments_runs_list": ("GET", f"{experiment}/runs", {}),
        "experiments_update": ("PATCH", experiment, {"json": {"description": "bench"}}),
        "experiments_estimate": (
            "POST",
            "/api/v1/experiments/estimate",
            {"json": experiment_body(pid, world["dataset_id"])},
        ),
        "api_keys_create": ("POST", "/api/v1/api-keys", {"json": {"name": "bench", "role": "viewer"}}),
        "api_keys_list": ("GET", "/api/v1/api-keys", {}),
        "api_keys_revoke": ("DELETE", f"/api/v1/api-keys/{access['key_id']}", {}),
        "auth_token": ("POST", "/api/v1/auth/token", {"json": {"api_key": access["secret"]}}),
        "me": ("GET", "/api/v1/me", {}),
        "members_list": ("GET", "/api/v1/members", {}),
        "members_set": ("PUT", "/api/v1/members/bench-member", {"json": {"role": "viewer"}}),
        "members_remove": ("DELETE", "/api/v1/members/bench-member", {}),
        "audit_list": ("GET", "/api/v1/audit", {}),
        "usage_get": ("GET", "/api/v1/usage", {}),
        "spending_cap_get": ("GET", "/api/v1/spending-cap", {}),
        "spending_cap_set": ("PUT", "/api/v1/spending-cap", {"json": {"monthly_cap_usd": None}}),
        "models_list": ("GET", "/api/v1/models", {}),
        "batch_list": ("GET", "/api/v1/inference/batch", {}),
        "datasets_list": ("GET", "/api/v1/datasets", {}),
        "experiments_list": ("GET", "/api/v1/experiments", {}),
        "web_dashboard": ("GET", "/dashboard/", {}),
        "health": ("GET", "/api/v1/health", {}),
        "prompts_create": ("POST", "/api/v1/prompts", {"json": {"output_prompt": "{input}"}}),
        "prompts_get": ("GET", f"/api/v1/prompts/{pid}", {}),
        "prompts_update": (
            "PUT",
            f"/api/v1/prompts/{pid}",
            {"json": {"system_prompt": "x"}, "headers": {"If-Match": "*"}},
        ),
        "prompts_patch": (
            "PATCH",
            f"/api/v1/prompts/{pid}",
            {"json": {"description": "bench"}, "headers": {"If-Match": "*"}},
        ),
        "prompts_archive": ("POST", f"/api/v1/prompts/{spare}/archive", {}),
        "prompts_unarchive": ("POST", f"/api/v1/prompts/{spare}/unarchive", {}),
        "prompts_list": ("GET", "/api/v1/prompts", {}),
        "prompts_versions": ("GET", f"/api/v1/prompts/{pid}/versions", {}),
        "prompts_label_set": ("PUT", f"/api/v1/prompts/{pid}/labels/production", {"json": {"version": 1}}),
        "prompts_label_delete": ("DELETE", f"/api/v1/prompts/{pid}/labels/bench", {}),
        "evaluation_score": (
            "POST",
            "/api/v1/evaluate",
            {"json": {"predictions": ["4"], "references": ["4"], "metrics": [{"name": "exact_match"}]}},
        ),
        "inference_complete": (
            "POST",
            "/api/v1/inference/complete",
            {"json": {"output_prompt": "Q: {input}", "user_input": "2 + 2?", "model": "sim:default"}},
        ),
    }
    return recipes.get(name)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants so far (0.0 without /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def cold_start(
    source_dir: Path,
    env: dict[str, str],
    method: str,
    path: str,
    kw: dict[str, Any],
    before: Any = None,
    profile: tuple[Path, str] | None = None,
) -> tuple[float, float]:
    """Seconds from process start until the first 2xx answer, and the CPU seconds spent by then.

    `before` runs first; an id it returns replaces "{new}" in the path (a resource to delete).
    `profile` (folder, name): start under first_request_profile.py instead, which records where
    the time goes (its own figures are a little slower: the import log costs time).
    """
    port = free_port()
    fw = str(Path(sys.executable).with_name("functions-framework"))
    command = [fw, "--target", "handle", "--source", "main.py", "--host", "127.0.0.1", "--port", str(port)]
    if profile:
        wrapper = str(Path(__file__).resolve().with_name("first_request_profile.py"))
        command = [sys.executable, "-X", "importtime", wrapper, str(profile[0]), profile[1], str(port)]
    # Bytecode is cached (as in a deployed image, where it is compiled at build time) but kept out
    # of the bundle; PYTHONDONTWRITEBYTECODE in the caller's environment would otherwise make every
    # start recompile every module and measure the compiler instead.
    # Only what the deployment installs is importable (see deployed_packages): the function's
    # requirements.txt, or for the baseline what functions-framework and Firestore need.
    wanted = source_dir / "requirements.txt"
    allowed = read_requirements(wanted) if wanted.exists() else closure(BASELINE_PACKAGES)
    python_path = os.pathsep.join((str(source_dir), guard_dir(frozenset(allowed))))
    # Each gets the environment Terraform adds (RUNTIME_ENV; nothing the baseline imports reads it).
    child_env = {**os.environ, **env, **RUNTIME_ENV}
    child_env.update({"PYTHONPATH": python_path, "PYTHONPYCACHEPREFIX": PYCACHE})
    child_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if before:
        path = path.replace("{new}", before() or "")
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=source_dir,
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        headers = {**HEADERS, **kw.get("headers", {})}
        body = {k: v for k, v in kw.items() if k != "headers"}
        while True:
            try:
                r = httpx.request(
                    method, f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10, **body
                )
                if r.status_code < 300:
                    return time.perf_counter() - started, _cpu_seconds(proc.pid)
                raise RuntimeError(f"{source_dir.name}: {r.status_code} {r.text[:200]}")
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{source_dir.name} exited with {proc.returncode}") from None
                time.sleep(0.005)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # a loaded machine can outlast the graceful shutdown
            proc.kill()
            proc.wait(10)


def main() -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated functions to measure (default: all)")
    parser.add_argument("--profile", type=Path, help="also log one start of each into this folder")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    root = repo_root()
    build_all(root)
    specs = load_manifest(root)
    load_before = os.getloadavg()[0]
    # Every emulator: the creates enqueue chunks, a start publishes its step, readiness checks all.
    which: tuple[EmulatorName, ...] = ("firestore", "storage", "pubsub", "tasks")
    with (
        Emulators(which=which, project=PROJECT, queues=wiring.queue_names(specs)) as emulators,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = dict(emulators.env)
        env.update(wire(env, specs))
        # Upload URLs are signed with a key file, as in the local stack. Without one, a function
        # facing the bare storage emulator makes a throwaway RSA key on every cold start: tens of
        # ms of CPU that a deployed function (signing through IAM signBlob) never spends.
        key_file = Path(tmp) / "signing-key.json"
        write_dev_signing_key(key_file, PROJECT)
        env["PROMPTOPT_SIGNING_KEY_FILE"] = str(key_file)
        pid, spare = seed(env)
        access = seed_access(env, Path(tmp))
        world = seed_world(env, pid)
        world["job_id"] = new_job(env)
        world["run_id"] = new_run(env, world["experiment_id"])
        world["scored_job_id"] = scored_job(env)
        baseline_dir = Path(tmp) / "baseline"
        baseline_dir.mkdir()
        (baseline_dir / "main.py").write_text(BASELINE)
        reference_dir = Path(tmp) / "pydantic_reference"
        reference_dir.mkdir()
        (reference_dir / "main.py").write_text(PYDANTIC_REFERENCE)
        wanted = sorted(closure([*BASELINE_PACKAGES, "pydantic"]))
        (reference_dir / "requirements.txt").write_text("".join(f"{name}\n" for name in wanted))

        def label_bench() -> None:
            from promptopt.auth import principal_from_claims
            from promptopt.prompts import service as prompts

            who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
            prompts.set_label(principal=who, prompt_id=pid, label="bench", version=1)

        # Every function, each start paired with a baseline start just before it.
        targets: list[tuple[str, Path, str, str, dict[str, Any], Any]] = [
            ("baseline (ff+firestore)", baseline_dir, "GET", "/", {}, None),
            (PYDANTIC_REFERENCE_NAME, reference_dir, "POST", "/", {"json": {"name": "bench"}}, None),
        ]

        def add_member() -> None:
            from promptopt.access import members
            from promptopt.auth import principal_from_claims

            who = principal_from_claims({"sub": "bench", "tenant": TENANT, "role": "admin"})
            members.set_role(principal=who, uid="bench-member", role="viewer")

        def fresh_run() -> str:  # an experiment has one active run at a time: a new one each start
            experiment_id = new_experiment(env, pid, world["dataset_id"])
            return f"{experiment_id}/runs/{new_run(env, experiment_id)}"

        started: list[str] = []

        def fresh_experiment() -> str:  # and a tenant 3: the last start's run is cancelled first
            retire_runs(started)
            started[:] = [new_experiment(env, pid, world["dataset_id"])]
            return started[0]

        hooks = {
            "prompts_label_delete": label_bench,
            "members_remove": add_member,
            "prompts_delete": lambda: new_prompt(env),
            "experiments_delete": lambda: new_experiment(env, pid, world["dataset_id"]),
            "datasets_delete": lambda: new_dataset(env),
            "batch_cancel": lambda: new_job(env),
            "experiments_run_cancel": lambda: fresh_run(),
            "experiments_start": fresh_experiment,
            "batch_create": lambda: retire_jobs(world["job_id"]),
            "batch_evaluation_create": lambda: retire_jobs(world["job_id"]),
        }
        skipped = []
        for spec in specs:
            if spec.is_http and (not only or spec.name in only):
                found = recipe(spec.name, pid, access, spare, world)
                if found is None:
                    skipped.append(spec.name)
                    continue
                method, path, kw = found
                targets.append(
                    (spec.name, root / "build" / spec.name, method, path, kw, hooks.get(spec.name))
                )
        baseline = targets[0]
        walls: dict[str, list[float]] = {t[0]: [] for t in targets}
        cpus: dict[str, list[float]] = {t[0]: [] for t in targets}
        ratios: dict[str, list[float]] = {t[0]: [] for t in targets[1:]}
        cpu_ratios: dict[str, list[float]] = {t[0]: [] for t in targets[1:]}
        for _name, folder, method, path, kw, before in targets:  # warm-up: fills the bytecode cache
            cold_start(folder, env, method, path, kw, before)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, folder, method, path, kw, before in targets:
                cold_start(folder, env, method, path, kw, before, profile=(args.profile, _file_name(name)))
        for _ in range(args.runs):
            for name, folder, method, path, kw, before in targets[1:]:
                base_wall, base_cpu = cold_start(baseline[1], env, *baseline[2:])
                wall, cpu = cold_start(folder, env, method, path, kw, before)
                walls[baseline[0]].append(base_wall)
                cpus[baseline[0]].append(base_cpu)
                walls[name].append(wall)
                cpus[name].append(cpu)
                ratios[name].append(wall / base_wall)
                cpu_ratios[name].append(cpu / base_cpu if base_cpu else 0.0)
    if args.runs:
        print_table(args.runs, load_before, baseline[0], walls, cpus, ratios, cpu_ratios)
    if skipped:
        print(f"not measured (no 2xx recipe here yet): {', '.join(skipped)}")
    if args.profile:
        print_imports(args.profile, [t[0] for t in targets])
    return 0


def print_table(
    runs: int,
    load_before: float,
    name: str,
    walls: dict[str, list[float]],
    cpus: dict[str, list[float]],
    ratios: dict[str, list[float]],
    cpu_ratios: dict[str, list[float]],
) -> None:
    """The medians per function, the baseline (`name`) first."""
    median = statistics.median
    print(f"cold start, process start -> first 2xx, medians of {runs} runs after a warm-up, each run")
    print("paired with a baseline start just before it (ratio: median of the paired ratios)")
    print(
        f"(bytecode cached as in a deployed image; {os.cpu_count()} CPUs; 1-minute load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    print(f"{'function':<24}{'seconds':>9}{'ratio':>8}{'cpu s':>8}{'cpu ratio':>11}")
    print(f"{name:<24}{median(walls[name]):>9.3f}{1.0:>8.2f}{median(cpus[name]):>8.3f}{1.0:>11.2f}")
    for function in ratios:
        print(
            f"{function:<24}{median(walls[function]):>9.3f}{median(ratios[function]):>8.2f}"
            f"{median(cpus[function]):>8.3f}{median(cpu_ratios[function]):>11.2f}"
        )
    functions = [n for n in ratios if n != PYDANTIC_REFERENCE_NAME]
    worst = max(functions, key=lambda n: median(ratios[n]))
    print(f"worst ratio {median(ratios[worst]):.2f} ({worst}; target <= 1.25)")


def _file_name(target: str) -> str:
    return target.split(" ")[0]


def import_costs(log: Path) -> dict[str, float]:
    """Milliseconds of import time per top-level package, from a -X importtime log (self times)."""
    costs: dict[str, float] = {}
    for line in log.read_text().splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, module = line.removeprefix("import time:").split("|")
        package = module.strip().split(".")[0]
        costs[package] = costs.get(package, 0.0) + int(self_us) / 1000
    return costs


def print_imports(folder: Path, names: list[str]) -> None:
    """Each function's CPU to load and to answer, and the packages its extra import time comes from."""
    base = import_costs(folder / f"{_file_name(names[0])}.imports")
    print(f"\none logged start each (in {folder}): CPU ms to load the function and to answer once,")
    print(f"and its import time beyond the baseline's {sum(base.values()):.0f} ms, by package")
    print(f"{'function':<24}{'load':>6}{'answer':>8}{'imports+':>10}  top packages")
    for name in names:
        times = json.loads((folder / f"{_file_name(name)}.json").read_text())
        costs = import_costs(folder / f"{_file_name(name)}.imports")
        extra = {p: ms - base.get(p, 0.0) for p, ms in costs.items()}
        top = sorted(extra.items(), key=lambda item: -item[1])[:5]
        shown = ", ".join(f"{p} {ms:.0f}" for p, ms in top if ms >= 1)
        print(
            f"{name:<24}{times['load_cpu_s'] * 1000:>6.0f}{times['first_request_cpu_s'] * 1000:>8.0f}"
            f"{sum(extra.values()):>10.0f}  {shown}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
