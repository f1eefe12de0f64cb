"""Offline checks of terraform/: formatting, and the security and wiring rules of the design.

The Google provider cannot be downloaded here, so `terraform validate/plan` run in CI
(cloudbuild.yaml); these tests read the HCL with python-hcl2 and the manifests with PyYAML.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.infra_hcl import FUNCTIONS, REPO, TERRAFORM, Module, Resource
from tests.infra.tools import missing, require_tool

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
ENVIRONMENTS = ("dev", "prod")


def tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


def strip_comments(text: str) -> str:
    return "\n".join(re.sub(r"(^|\s)(#|//).*$", "", line) for line in text.splitlines())


def attr_values(node: Any, key: str) -> list[Any]:
    """Every value of attribute `key` anywhere under `node`."""
    found: list[Any] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found += attr_values(v, key)
    elif isinstance(node, list):
        for item in node:
            found += attr_values(item, key)
    return found


# --- formatting -----------------------------------------------------------------------------


def test_terraform_fmt_is_clean() -> None:
    terraform = require_tool("terraform")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
        env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}"


def test_every_module_has_the_four_standard_files(tf_folders: list[Path]) -> None:
    for folder in [TERRAFORM, *sorted((TERRAFORM / "modules").iterdir())]:
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (folder / name).is_file(), f"{folder.relative_to(REPO)} lacks {name}"


# --- the manifest drives the functions ------------------------------------------------------


def test_root_reads_the_builders_manifests(tf: dict[str, Module]) -> None:
    # Which functions exist comes from functions/*/function.yaml; what each one is, from the
    # builder's validated build/<name>/function.json (normalised once, in Python).
    root = tf["."]
    assert 'fileset("${local.repo_root}/functions", "*/function.yaml")' in root.locals["manifest_folders"]
    assert 'fileset(local.build_dir, "*/function.json")' in root.locals["bundled_manifests"]
    assert "jsondecode(file(" in root.locals["bundled_manifests"]
    assert "yamldecode" not in root.text
    assert root.locals["build_dir"] == "${local.repo_root}/build"
    assert root.locals["functions"] == "${module.manifest.functions}"
    assert root.modules["manifest"]["functions"] == "${local.bundled_manifests}"
    assert root.modules["manifest"]["manifest_folders"] == "${local.manifest_folders}"
    # Task targets and every other function: two calls of the one function module.
    calls = {name: root.modules[name] for name in ("task_function", "function")}
    assert calls["task_function"]["for_each"] == "${local.task_functions}"
    assert calls["function"]["for_each"] == "${local.other_functions}"
    assert 'f.trigger_type == "task"' in root.locals["task_functions"]
    assert 'f.trigger_type != "task"' in root.locals["other_functions"]
    for call in calls.values():
        assert call["source"] == "./modules/function"
        assert call["spec"] == "${each.value}"
        assert call["source_dir"] == "${local.build_dir}/${each.key}"


def test_every_function_gets_the_runtime_env_the_local_stack_sets(tf: dict[str, Module]) -> None:
    from promptopt.manifest import RUNTIME_ENV

    given = tf["modules/function"].locals["environment_variables"]
    for name, value in RUNTIME_ENV.items():
        assert f'{name} = "{value}"' in given


def test_terraform_does_not_normalise_the_manifest_again(tf: dict[str, Module]) -> None:
    manifest = tf["modules/manifest"]
    assert "try(" not in manifest.locals["functions"]
    for folder in ("modules/manifest", "modules/function", "."):
        for name, variable in tf[folder].variables.items():
            assert variable.get("type") not in ("${any}", "any"), f"{folder}: var.{name} is untyped"


def test_no_function_is_named_in_terraform(manifests: dict[str, dict[str, Any]]) -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in tf_files())
    text += "\n".join(p.read_text(encoding="utf-8") for p in TERRAFORM.rglob("*.tfvars"))
    for name in manifests:
        for spelling in {name, name.replace("_", "-")}:
            assert not re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", text), (
                f"function {spelling!r} is named in terraform/; it must come from its manifest only"
            )


def test_manifest_folders_match_names(manifests: dict[str, dict[str, Any]]) -> None:
    # Terraform keys modules by folder and builds from build/<folder>; the module names things by
    # manifest name. They must agree (promptopt.manifest enforces the same).
    for folder, manifest in manifests.items():
        assert manifest["name"] == folder


def test_each_function_has_its_own_service_account_with_exactly_its_manifest_roles(
    tf: dict[str, Module],
) -> None:
    fn = tf["modules/function"]
    accounts = fn.of_type("google_service_account")
    assert len(accounts) == 1
    assert "count" not in accounts[0].body
    assert "for_each" not in accounts[0].body
    (function,) = fn.of_type("google_cloudfunctions2_function")
    service = function.block("service_config")
    assert service is not None
    assert service["service_account_email"] == "${google_service_account.this.email}"
    # Roles: one binding per manifest role, on that account, and nothing else at project level.
    (roles,) = fn.of_type("google_project_iam_member")
    assert roles.body["for_each"] == "${local.f.roles}"
    assert roles.body["member"] == "serviceAccount:${google_service_account.this.email}"
    functions = tf["modules/manifest"].locals["functions"]
    assert "r.role => r.why" in functions
    assert "m.roles" in functions


def test_service_account_ids_and_names_fit_gcp_limits(manifests: dict[str, dict[str, Any]]) -> None:
    # Mirrors modules/manifest account_id / deploy_name (test_manifest_module.py runs the real thing).
    for env in ENVIRONMENTS:
        for name in manifests:
            wanted = f"{env}-fn-{name.replace('_', '-')}"
            digest = hashlib.sha1(wanted.encode(), usedforsecurity=False).hexdigest()[:6]
            account = wanted if len(wanted) <= 30 else f"{wanted[:23].removesuffix('-')}-{digest}"
            assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account), account
            assert len(f"{env}-{name.replace('_', '-')}-push") <= 63


def test_environment_prefixes_are_short_enough(tf: dict[str, Module]) -> None:
    validation = tf["."].variables["environment"]["validation"][0]["condition"]
    assert "{1,7}" in validation  # keeps "<env>-fn-<name>" service account ids within 30 chars


# --- nothing public, no primitive roles -----------------------------------------------------


def test_no_public_members_anywhere() -> None:
    for path in tf_files():
        code = strip_comments(path.read_text(encoding="utf-8"))
        assert "allUsers" not in code, path
        assert "allAuthenticatedUsers" not in code, path


def test_no_primitive_roles_granted(
    all_resources: list[Resource], manifests: dict[str, dict[str, Any]]
) -> None:
    for resource in all_resources:
        for role in attr_values(resource.body, "role"):
            assert role not in PRIMITIVE_ROLES, f"{resource.type}.{resource.name} grants {role}"
    for name, manifest in manifests.items():
        for grant in manifest.get("roles") or []:
            assert grant["role"] not in PRIMITIVE_ROLES, f"{name} asks for {grant['role']}"
            assert grant.get("why"), f"{name}: every role needs a why"


def test_function_module_refuses_primitive_roles(tf: dict[str, Module]) -> None:
    (account,) = tf["modules/function"].of_type("google_service_account")
    condition = account.body["lifecycle"][0]["precondition"][0]["condition"]
    assert "local.primitive_roles" in condition
    assert set(tf["modules/function"].locals["primitive_roles"]) == PRIMITIVE_ROLES
    assert set(tf["modules/manifest"].locals["primitive_roles"]) == PRIMITIVE_ROLES


def test_each_function_has_exactly_one_invoker_its_trigger_identity(
    tf: dict[str, Module], all_resources: list[Resource]
) -> None:
    fn = tf["modules/function"]
    (invoker,) = fn.of_type("google_cloud_run_service_iam_member")
    assert "for_each" not in invoker.body
    assert "count" not in invoker.body
    assert invoker.body["role"] == "roles/run.invoker"
    assert invoker.body["member"] == "serviceAccount:${local.invoker}"
    invokers = fn.locals["invoker"]
    assert "http = var.gateway_service_account" in invokers
    assert "task = var.tasks_service_account" in invokers
    # No other invoker grants anywhere (a second member would widen who can call a function).
    invoker_roles = {"roles/run.invoker", "roles/cloudfunctions.invoker"}
    grants = [r for r in all_resources if invoker_roles & set(attr_values(r.body, "role"))]
    assert grants == [invoker]
    assert not [r for r in all_resources if r.type.endswith("_iam_binding") or r.type.endswith("_iam_policy")]


def test_only_http_functions_accept_external_ingress(tf: dict[str, Module]) -> None:
    (function,) = tf["modules/function"].of_type("google_cloudfunctions2_function")
    service = function.block("service_config")
    assert service is not None
    assert service["ingress_settings"] == '${local.is_http ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"}'


def test_http_functions_are_routed_by_the_gateway(tf: dict[str, Module]) -> None:
    gateway = tf["."].modules["gateway"]
    assert "module.manifest.http_functions" in gateway["backends"]
    assert "module.function[k].uri" in gateway["backends"]
    assert 'f.trigger_type == "http"' in tf["modules/manifest"].locals["http_functions"]


# --- async delivery: dead letters and retries -----------------------------------------------


def test_every_subscription_dead_letters(all_resources: list[Resource]) -> None:
    subscriptions = [r for r in all_resources if r.type == "google_pubsub_subscription"]
    assert subscriptions
    for sub in subscriptions:
        if sub.path.parent.name == "messaging" and sub.name == "dead_letter":
            # The hold subscription on a dead-letter topic is the end of the line.
            assert "dead-letter" in sub.body["topic"] or "dead_letter" in sub.body["topic"]
            continue
        policy = sub.block("dead_letter_policy")
        assert policy, f"{sub.name} has no dead-letter policy"
        assert policy.get("dead_letter_topic"), f"{sub.name} has no dead-letter topic"
        retry = sub.block("retry_policy")
        assert retry, f"{sub.name} has no retry policy"
        assert retry.get("minimum_backoff"), sub.name
        assert retry.get("maximum_backoff"), sub.name
        push = sub.block("push_config")
        if push:
            assert push["oidc_token"][0]["service_account_email"], f"{sub.name} pushes unauthenticated"


def test_every_topic_has_a_dead_letter_topic(tf: dict[str, Module]) -> None:
    messaging = tf["modules/messaging"]
    topics = {r.name: r for r in messaging.of_type("google_pubsub_topic")}
    assert set(topics) == {"this", "dead_letter", "notification"}
    assert topics["this"].body["for_each"] == topics["dead_letter"].body["for_each"]
    # Notification topics (regression alerts) are for people: no function consumes them, so they
    # get no push subscription, but functions are told their ids like any other topic's.
    assert "notification_topics" in topics["notification"].body["for_each"]
    root = tf["."]
    assert "experiment-alerts" in str(root.variables["notification_topics"]["default"])
    assert root.modules["messaging"]["notification_topics"] == "${var.notification_topics}"
    assert "google_pubsub_topic.notification : k => t.id" in messaging.text
    (publisher,) = messaging.of_type("google_pubsub_topic_iam_member")
    assert publisher.body["role"] == "roles/pubsub.publisher"
    assert tf["."].modules["messaging"]["topics"] == "${module.manifest.topics}"


def test_event_triggers_retry_and_use_the_trigger_account(all_resources: list[Resource]) -> None:
    for fn in (r for r in all_resources if r.type == "google_cloudfunctions2_function"):
        trigger = fn.block("event_trigger")
        if trigger is None:
            continue
        assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
        assert trigger["service_account_email"] == "${var.eventarc_service_account}"
    for trigger in (r for r in all_resources if r.type == "google_eventarc_trigger"):
        assert trigger.body.get("service_account"), trigger.name


def test_tasks_queue_has_rate_limits_and_backoff(tf: dict[str, Module]) -> None:
    (queue,) = tf["modules/messaging"].of_type("google_cloud_tasks_queue")
    assert queue.block("rate_limits")
    assert queue.block("retry_config")
    inference = tf["."].variables["queues"]["default"]["inference"]
    assert inference["max_concurrent_dispatches"] > 0
    assert inference["max_dispatches_per_second"] > 0
    assert inference["max_attempts"] > 1
    assert inference["min_backoff"]
    assert inference["max_backoff"]


def test_scheduler_jobs_publish_only_to_topics_their_function_consumes(tf: dict[str, Module]) -> None:
    (job,) = tf["modules/messaging"].of_type("google_cloud_scheduler_job")
    assert "google_pubsub_topic.this" in job.block("pubsub_target")["topic_name"]  # type: ignore[index]
    schedules = tf["modules/manifest"].locals["schedules"]
    assert 'if f.trigger_type == "scheduler"' in schedules
    assert "topic = f.topic" in schedules
    # No platform tick: a job whose topic nobody reads would publish into the void.
    assert "schedule_tick" not in "".join(m.text for m in tf.values())


# --- secrets --------------------------------------------------------------------------------


SECRETISH = re.compile(r"(secret|password|passwd|token|api[_-]?key|private[_-]?key|credential)", re.I)


def test_secrets_come_only_from_secret_manager(
    all_resources: list[Resource], tf: dict[str, Module], manifests: dict[str, dict[str, Any]]
) -> None:
    # Terraform creates secret containers only; values never pass through variables or state.
    assert not [r for r in all_resources if r.type == "google_secret_manager_secret_version"]
    (function,) = tf["modules/function"].of_type("google_cloudfunctions2_function")
    service = function.block("service_config")
    assert service is not None
    assert "secret_environment_variables" in str(service.get("dynamic", ""))
    (access,) = tf["modules/function"].of_type("google_secret_manager_secret_iam_member")
    assert access.body["for_each"] == "${local.f.secrets}"
    assert access.body["role"] == "roles/secretmanager.secretAccessor"
    # Names that look secret but hold public identifiers: an account, and the API-token issuer
    # (an account's email) and audience that every token carries in the clear.
    public = {"PROMPTOPT_TASKS_SERVICE_ACCOUNT", "PROMPTOPT_API_TOKEN_ISSUER", "PROMPTOPT_API_TOKEN_AUDIENCE"}
    for key in tf["."].locals["platform_env"]:
        assert not SECRETISH.search(key) or key in public, key
    for name, manifest in manifests.items():
        for key in manifest.get("env") or {}:
            assert not SECRETISH.search(key), f"{name}: {key} looks like a secret; list it under secrets:"


def test_tfvars_hold_no_secret_values() -> None:
    for tfvars in TERRAFORM.rglob("*.tfvars"):
        for line in strip_comments(tfvars.read_text(encoding="utf-8")).splitlines():
            key = line.split("=", 1)[0].strip()
            assert not SECRETISH.search(key), f"{tfvars.relative_to(REPO)}: {line.strip()}"


# --- gateway --------------------------------------------------------------------------------


def test_gateway_config_reads_the_openapi_template(tf: dict[str, Module]) -> None:
    gateway = tf["modules/gateway"]
    document = gateway.locals["document"]
    assert document.startswith("${templatefile(var.openapi_template")
    for name in (
        "backends", "jwt_issuer", "jwt_jwks_uri", "jwt_audiences",
        "api_token_issuer", "api_token_jwks_uri", "api_token_audiences",
    ):  # fmt: skip
        assert f"{name} = var.{name}" in document
    assert tf["."].modules["gateway"]["openapi_template"] == "${path.module}/api/openapi.yaml"
    (config,) = gateway.of_type("google_api_gateway_api_config")
    assert config.body["lifecycle"][0]["create_before_destroy"] is True
    assert "sha256(jsonencode(local.config_inputs))" in gateway.locals["config_id"]
    assert config.body["api_config_id"] == "${local.config_id}"
    backend = config.block("gateway_config")["backend_config"][0]  # type: ignore[index]
    assert backend["google_service_account"] == "${var.gateway_service_account}"
    for resource in gateway.resources:
        assert (
            resource.body.get("provider") == "${google-beta}"
            or resource.body.get("provider") == "google-beta"
        )


def test_firebase_auth_is_the_default_issuer(tf: dict[str, Module]) -> None:
    root = tf["."]
    assert "https://securetoken.google.com/${var.project_id}" in root.locals["jwt_issuer"]
    assert "securetoken@system.gserviceaccount.com" in root.variables["jwt_jwks_uri"]["default"]
    assert "var.project_id" in root.locals["jwt_audiences"]


def test_openapi_template_only_uses_known_placeholders(manifests: dict[str, dict[str, Any]]) -> None:
    spec = TERRAFORM / "api" / "openapi.yaml"
    if not spec.is_file():
        missing("terraform/api/openapi.yaml is generated by the OpenAPI builder and not present yet")
    placeholders = set(re.findall(r"\$\{([^}]*)\}", spec.read_text(encoding="utf-8")))
    http = {n for n, m in manifests.items() if m["trigger"]["type"] == "http"}
    allowed = {f"backends.{n}" for n in http} | {"jwt_issuer", "jwt_jwks_uri", "jwt_audiences"}
    allowed |= {"api_token_issuer", "api_token_jwks_uri", "api_token_audiences"}
    assert placeholders <= allowed, placeholders - allowed
    assert {f"backends.{n}" for n in http} <= placeholders, "an HTTP function is not routed"


# --- packaging ------------------------------------------------------------------------------


def test_source_zip_is_content_addressed(tf: dict[str, Module]) -> None:
    fn = tf["modules/function"]
    (archive,) = fn.of_type("archive_file")
    assert archive.kind == "data"
    assert archive.body["output_file_mode"] == "0644"
    assert archive.body["source_dir"] == "${var.source_dir}"
    (obj,) = fn.of_type("google_storage_bucket_object")
    assert "${data.archive_file.source.output_md5}" in obj.body["name"]
    (function,) = fn.of_type("google_cloudfunctions2_function")
    build = function.block("build_config")
    assert build is not None
    source = build["source"][0]["storage_source"][0]
    assert source["object"] == "${google_storage_bucket_object.source.name}"
    assert build["runtime"] == "${var.runtime}"
    assert tf["modules/function"].variables["runtime"]["default"] == "python311"
    assert build["entry_point"] == "${local.f.entry_point}"
    assert "entry_point = m.entry_point" in tf["modules/manifest"].locals["functions"]


# --- stateful resources are protected -------------------------------------------------------


def prevent_destroy(resource: Resource) -> bool:
    return any(block.get("prevent_destroy") is True for block in resource.body.get("lifecycle", []))


def test_stateful_resources_are_protected(all_resources: list[Resource]) -> None:
    (database,) = [r for r in all_resources if r.type == "google_firestore_database"]
    assert database.body["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"
    assert database.body["deletion_policy"] == "ABANDON"
    assert prevent_destroy(database)
    buckets = [r for r in all_resources if r.type == "google_storage_bucket"]
    assert {b.name for b in buckets} == {"data", "sources"}
    for bucket in buckets:
        assert bucket.body["force_destroy"] is False, bucket.name
        assert bucket.body["uniform_bucket_level_access"] is True, bucket.name
        assert bucket.body["public_access_prevention"] == "enforced", bucket.name
        assert bucket.block("versioning") == {"enabled": True}, bucket.name
        assert bucket.body.get("lifecycle_rule"), bucket.name
        if bucket.name != "sources":  # zips are reproducible from git
            assert prevent_destroy(bucket), bucket.name
    for secret in (r for r in all_resources if r.type == "google_secret_manager_secret"):
        assert prevent_destroy(secret)


def test_firestore_indexes_ttl_and_exemptions(tf: dict[str, Module]) -> None:
    data = tf["modules/data"]
    indexes = data.variables["firestore_indexes"]["default"]
    # Sorted listings derive their indexes (every order and direction, alone and with each filter).
    prompts = data.variables["firestore_sorted_lists"]["default"]["prompts"]
    assert prompts["id_field"] == "prompt_id"
    assert {(f["field_path"], f.get("array_config")) for f in prompts["filters"]} == {
        ("archived", None),
        ("name", None),
        ("label_names", "CONTAINS"),
    }
    (index,) = data.of_type("google_firestore_index")
    assert "local.sorted_list_indexes" in str(index.body["for_each"])
    derived = str(data.locals["sorted_list_indexes"])
    assert "o.list.id_field" in derived
    assert "f.field_path" in derived
    lists = data.variables["firestore_sorted_lists"]["default"]
    filters = {name: {f["field_path"] for f in spec["filters"]} for name, spec in lists.items()}
    assert filters["experiments"] == {"name_lower", "last_run_status"}
    assert lists["experiments"]["name_field"] == "name_lower"
    assert filters["datasets"] == {"name"}
    assert filters["batch_jobs"] == {"status", "kind", "prompt.prompt_id"}
    assert lists["batch_jobs"]["orders"] == ["created", "updated"]  # jobs have no name
    # Nothing declares by hand what is derived (a duplicate index fails to apply).
    plain = [ix for ix in indexes.values() if ix.get("query_scope", "COLLECTION") == "COLLECTION"]
    assert not [ix for ix in plain if ix["collection"] in {"prompts", "datasets", "batch_jobs"}]
    assert [len(ix["fields"]) for ix in plain if ix["collection"] == "experiments"] == [4]
    ttl = {(t["collection"], t["field"]) for t in data.variables["firestore_ttl_fields"]["default"]}
    assert {("idempotency", "expires_at"), ("cache", "expires_at")} <= ttl
    exempt = {(t["collection"], t["field"]) for t in data.variables["firestore_index_exemptions"]["default"]}
    assert ("results", "created_at") in exempt
    # Fields that hold arrays of per-row scores must not be indexed (40,000 entries per document).
    assert {("scores", "values"), ("candidates", "accept_scores"), ("runs", "state")} <= exempt
    across = {
        (t["collection"], t["field"]) for t in data.variables["firestore_collection_group_fields"]["default"]
    }
    assert ("experiments", "next_run_at") in across  # the schedule tick's query spans tenants
    groups = {ix["collection"]: ix for ix in indexes.values() if ix.get("query_scope") == "COLLECTION_GROUP"}
    assert {"runs", "batch_jobs"} <= set(groups)
    fields = {r.name: r for r in data.of_type("google_firestore_field")}
    assert "ttl_config" in fields["ttl"].body
    assert fields["exempt"].body["index_config"] == [{}]
    assert "COLLECTION_GROUP" in str(fields["collection_group"].body["index_config"])


# --- environments ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_layout(env: str, tf: dict[str, Module]) -> None:
    folder = TERRAFORM / "environments" / env
    for name in ("main.tf", "backend.tf", "versions.tf", "terraform.tfvars"):
        assert (folder / name).is_file(), f"{env} lacks {name}"
    module = tf[f"environments/{env}"]
    call = module.modules["promptopt"]
    assert call["source"] == "../.."
    assert call["environment"] == env
    assert "path.root" in call["repo_root"]
    assert 'backend "gcs"' in (folder / "backend.tf").read_text(encoding="utf-8")
    tfvars = (folder / "terraform.tfvars").read_text(encoding="utf-8")
    assert f'project_id = "your-{env}-project"' in tfvars
    assert (folder / module.variables["repo_root"]["default"] / "functions").resolve() == FUNCTIONS.resolve()


def test_checkov_skips_carry_reasons() -> None:
    for path in tf_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV2?_[A-Z]+_\d+:\S.{15,}", line), f"{path}: {line.strip()}"
