"""A first `scripts/deploy ENV` into an empty project succeeds, and what it deploys works.

Each test holds one cause of a failed first apply (or of a deployment that applies but does not
work), read offline from terraform/ and the deploy script.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from promptopt import config
from tests.infra.infra_hcl import REPO, Module, Resource


def grants(module: Module) -> list[Resource]:
    return [r for r in module.resources if r.type.endswith("_iam_member")]


# --- 1. builds can read their source ---------------------------------------------------------


def test_build_account_reads_sources_at_project_level(tf: dict[str, Module]) -> None:
    # Gen2 builds fetch from the Google-managed gcf-v2-sources-<number>-<region> bucket, which only
    # exists after the first deploy: a grant on our own sources bucket is not enough.
    identities = tf["modules/identities"]
    viewers = [r for r in grants(identities) if r.body.get("role") == "roles/storage.objectViewer"]
    assert [(r.type, r.body["member"]) for r in viewers] == [
        ("google_project_iam_member", "serviceAccount:${google_service_account.build.email}")
    ]
    assert "gcf-v2-sources" in identities.text  # the why is written next to the grant
    assert not identities.of_type("google_storage_bucket_iam_member")


# --- 2. functions are created after their grants ---------------------------------------------


def test_functions_wait_for_every_grant_and_for_propagation(tf: dict[str, Module]) -> None:
    fn = tf["modules/function"]
    (function,) = fn.of_type("google_cloudfunctions2_function")
    (sleep,) = fn.of_type("time_sleep")
    depends = set(function.body["depends_on"])
    assert f"${{time_sleep.{sleep.name}}}" in depends or f"time_sleep.{sleep.name}" in depends
    assert sleep.body["create_duration"] == "${var.iam_wait}"
    triggers = sleep.body["triggers"]
    assert "var.shared_grants" in triggers
    # Every grant of the function's own account is waited for ...
    own = {f"{r.type}.{r.name}" for r in grants(fn) if r.type != "google_cloud_run_service_iam_member"}
    own -= {"google_pubsub_subscription_iam_member.dead_letter_subscriber"}  # needs the function first
    for grant in own:
        assert grant in triggers, f"the function does not wait for {grant}"
    # ... and so is every shared grant (build roles, Eventarc receiver, storage agent publisher).
    identities = tf["modules/identities"]
    (output,) = [v for k, v in _outputs(identities).items() if k == "grants"]
    for grant in grants(identities):
        assert f"{grant.type}.{grant.name}" in output, f"modules/identities output grants lacks {grant.name}"
    root = tf["."]
    for call in ("function", "task_function"):
        assert root.modules[call]["shared_grants"] == "${module.identities.grants}"
        assert root.modules[call]["iam_wait"] == "${var.iam_propagation_wait}"
    assert root.variables["iam_propagation_wait"]["default"] == "60s"


def _outputs(module: Module) -> dict[str, str]:
    found = re.findall(r'output "(\w+)" \{(.*?)\n\}', module.text, flags=re.S)
    return {name: body for name, body in found}


# --- 3. secrets have a value before functions mount them ------------------------------------


def test_deploy_creates_secrets_first_then_checks_their_values() -> None:
    script = (REPO / "scripts" / "deploy").read_text(encoding="utf-8")
    targeted = script.index("-target=module.promptopt.module.secrets")
    assert "-target=module.promptopt.module.services" in script
    check = script.index("gcloud secrets versions list")
    full = script.rindex('terraform apply -input=false -var="project_id=$project" "$@"')
    assert targeted < check < full
    assert "labels.environment=$env_name" in script  # the secrets of this environment only


# --- 4. two environments in one project -----------------------------------------------------


def test_each_environment_has_its_own_database_and_secret_ids(tf: dict[str, Module]) -> None:
    data = tf["modules/data"]
    (database,) = data.of_type("google_firestore_database")
    assert database.body["name"] == "${local.firestore_database}"
    assert "${var.environment}" in data.locals["firestore_database"]
    assert len(data.locals["firestore_database"].replace("${var.environment}", "xx")) >= 4  # ids: 4-63
    for resource in data.resources:
        if resource.type in ("google_firestore_index", "google_firestore_field"):
            assert resource.body["database"] == "${google_firestore_database.this.name}", resource.name
    (secret,) = tf["modules/secrets"].of_type("google_secret_manager_secret")
    assert secret.body["secret_id"] == "${var.environment}-${each.value}"
    root = tf["."]
    assert root.modules["secrets"]["environment"] == "${var.environment}"
    assert root.modules["secrets"]["labels"] == "${local.labels}"
    assert "environment = var.environment" in root.locals["labels"]  # scripts/deploy filters on it


def test_functions_are_told_their_database_and_mount_prefixed_secrets(tf: dict[str, Module]) -> None:
    root = tf["."]
    assert root.locals["platform_env"]["PROMPTOPT_FIRESTORE_DATABASE"] == "${module.data.firestore_database}"
    assert "firestore_database" in config.Settings._fields
    (function,) = tf["modules/function"].of_type("google_cloudfunctions2_function")
    mounted = function.block("service_config")["dynamic"][0]["secret_environment_variables"]  # type: ignore[index]
    assert mounted["content"][0]["secret"] == "${var.secret_names[secret_environment_variables.value.secret]}"
    for call in ("function", "task_function"):
        assert root.modules[call]["secret_names"] == "${module.secrets.names}"


def test_clients_open_the_configured_database() -> None:
    clients = (REPO / "shared" / "promptopt" / "clients.py").read_text(encoding="utf-8")
    assert "database=cfg.firestore_database" in clients
    settings = config.Settings.from_env({"PROMPTOPT_FIRESTORE_DATABASE": "promptopt-dev"})
    assert settings.firestore_database == "promptopt-dev"


def test_every_environment_scoped_name_carries_the_environment(all_resources: list[Resource]) -> None:
    named = {
        "google_service_account": "account_id",
        "google_pubsub_topic": "name",
        "google_pubsub_subscription": "name",
        "google_cloud_tasks_queue": "name",
        "google_cloud_scheduler_job": "name",
        "google_storage_bucket": "name",
        "google_secret_manager_secret": "secret_id",
        "google_cloudfunctions2_function": "name",
    }
    prefixes = ("${var.environment}", "${local.prefix}", "${local.bucket_prefix}", "${local.f.")
    for resource in all_resources:
        if resource.type in named:
            value = str(resource.body[named[resource.type]])
            assert value.startswith(prefixes), f"{resource.type}.{resource.name}: {value}"


# --- 5. service agents exist before they are granted ----------------------------------------


def test_service_agents_come_from_service_identity(tf: dict[str, Module]) -> None:
    services = tf["modules/services"]
    identities = {r.body["service"]: r for r in services.of_type("google_project_service_identity")}
    assert {"pubsub.googleapis.com", "eventarc.googleapis.com"} <= set(identities)
    for identity in identities.values():
        assert identity.body["provider"] in ("${google-beta}", "google-beta")
    assert services.of_type("google_storage_project_service_account")
    assert "google_project_service_identity.pubsub.email" in _outputs(services)["pubsub_service_agent"]
    for module in tf.values():
        assert "gcp-sa-pubsub" not in module.text, module.path
        assert "data.google_project.this.number" not in module.text, module.path
    root = tf["."]
    for call in ("identities", "messaging", "function", "task_function"):
        assert root.modules[call]["pubsub_service_agent"] == "${module.services.pubsub_service_agent}"
    assert root.modules["identities"]["storage_service_agent"] == "${module.services.storage_service_agent}"


# --- 6. signing URLs works -------------------------------------------------------------------


def test_iam_credentials_api_is_enabled(tf: dict[str, Module], manifests: dict[str, dict[str, Any]]) -> None:
    assert any(m.get("sign_urls") for m in manifests.values()), "no signer left; drop this test's premise"
    assert "iamcredentials.googleapis.com" in tf["modules/services"].variables["services"]["default"]


# --- 7. no topic or job that nobody reads ---------------------------------------------------


def test_topics_and_jobs_come_only_from_consumers(tf: dict[str, Module]) -> None:
    root, manifest = tf["."], tf["modules/manifest"]
    assert "topics" not in root.variables
    assert "base_topics" not in manifest.variables
    assert manifest.locals["topics"] == (
        "${sort(distinct([for f in local.functions : f.topic if f.topic != null]))}"
    )
    assert root.modules["messaging"]["topics"] == "${module.manifest.topics}"
    assert root.modules["messaging"]["schedules"] == "${module.manifest.schedules}"


def test_a_publish_to_a_topic_that_does_not_exist_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    # batch_evaluate publishes evaluation-completed, which has no consumer (hence no topic) yet.
    from promptopt.batch import events

    monkeypatch.setenv(
        "PROMPTOPT_TOPICS", json.dumps({"batch-completed": "projects/p/topics/dev-batch-completed"})
    )
    config.reset()
    try:
        assert events.publish(events.EVALUATION_COMPLETED, {"job_id": "j"}) is None
    finally:
        config.reset()


# --- 8. Cloud Tasks reach internal-only functions -------------------------------------------


def test_tasks_target_the_run_app_url(tf: dict[str, Module], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tf["."]
    assert root.locals["task_function_urls"] == "${{for k, m in module.task_function : k => m.uri}}"
    env = root.modules["function"]["platform_env"]
    assert "PROMPTOPT_FUNCTION_URLS = jsonencode(local.task_function_urls)" in env
    uri = _outputs(tf["modules/function"])["uri"]
    assert "google_cloudfunctions2_function.this.service_config[0].uri" in uri
    for module in tf.values():
        assert "cloudfunctions.net" not in module.text.replace("not its cloudfunctions.net URL", "").replace(
            "never the cloudfunctions.net URL", ""
        ), module.path
    # The library posts tasks to (and names as audience) the URL it is given for the target.
    from promptopt.batch import chunks

    url = "https://dev-batch-chunk-abc123-uc.a.run.app"
    monkeypatch.setenv("PROMPTOPT_FUNCTION_URLS", json.dumps({chunks.CHUNK_FUNCTION: url}))
    monkeypatch.setenv("PROMPTOPT_TASKS_SERVICE_ACCOUNT", "dev-tasks-invoker@p.iam.gserviceaccount.com")
    config.reset()
    try:
        assert chunks.chunk_function_url() == url
        from google.cloud import tasks_v2

        from promptopt.tasks_grpc import encode_create

        task = chunks._task("q", url, chunks.ChunkTask("t", "j", 0), 0, 60)
        sent = tasks_v2.CreateTaskRequest.deserialize(encode_create("q", task)).task.http_request
        assert (sent.url, sent.oidc_token.audience) == (url, url)
        assert sent.oidc_token.service_account_email == "dev-tasks-invoker@p.iam.gserviceaccount.com"
    finally:
        config.reset()


def test_task_targets_are_the_manifests_task_functions(manifests: dict[str, dict[str, Any]]) -> None:
    from promptopt.batch import chunks

    assert manifests[chunks.CHUNK_FUNCTION]["trigger"]["type"] == "task"


# --- 9. API Gateway config ids ---------------------------------------------------------------


def test_gateway_config_id_hashes_everything_that_defines_a_config(tf: dict[str, Module]) -> None:
    gateway = tf["modules/gateway"]
    (config_resource,) = gateway.of_type("google_api_gateway_api_config")
    inputs = gateway.locals["config_inputs"]
    assert inputs["document"] == "${local.document}"
    backend = config_resource.block("gateway_config")["backend_config"][0]  # type: ignore[index]
    # Everything the config is made of (its documents and its backend settings) is hashed.
    for value in backend.values():
        assert value in inputs.values(), f"{value} is not part of the config id"
    document = config_resource.block("openapi_documents")["document"][0]  # type: ignore[index]
    assert document["contents"] == "${base64encode(local.document)}"
    assert "local.config_inputs" in gateway.locals["config_id"]
