"""Terraform for machine access and operations: the token issuer, its one signer, the second
issuer at the gateway, audit and rate-limit TTLs, and the monitoring module's metrics, alerts,
dashboard and uptime check, each reading a log line the code still writes."""

from __future__ import annotations

from typing import Any

from tests.infra.infra_hcl import REPO, Module

SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "shared" / "promptopt").rglob("*.py"))


def test_tokens_are_signed_by_a_dedicated_account_only_the_exchange_may_use(
    tf: dict[str, Module], manifests: dict[str, dict[str, Any]]
) -> None:
    accounts = {r.name: r for r in tf["modules/identities"].of_type("google_service_account")}
    assert accounts["api_tokens"].body["account_id"] == "${local.prefix}-api-tokens"
    # The issuer account holds no role of its own.
    for grant in tf["modules/identities"].resources:
        assert "api_tokens" not in str(grant.body.get("member", "")), grant.name
    (signer,) = [
        r
        for r in tf["modules/function"].of_type("google_service_account_iam_member")
        if r.name == "sign_api_tokens"
    ]
    assert signer.body["count"] == "${local.f.sign_tokens ? 1 : 0}"
    assert signer.body["role"] == "roles/iam.serviceAccountTokenCreator"
    assert signer.body["service_account_id"] == "${var.api_tokens_service_account_name}"
    assert [n for n, m in manifests.items() if m.get("sign_tokens")] == ["auth_token"]
    assert "sign_tokens = m.sign_tokens" in tf["modules/manifest"].locals["functions"].replace("  ", " ")
    assert "iamcredentials.googleapis.com" in tf["modules/services"].variables["services"]["default"]


def test_the_gateway_trusts_the_token_issuer_as_a_second_issuer(tf: dict[str, Module]) -> None:
    gateway = tf["."].modules["gateway"]
    assert gateway["api_token_issuer"] == "${local.api_token_issuer}"
    assert gateway["api_token_jwks_uri"] == (
        "https://www.googleapis.com/service_accounts/v1/metadata/jwk/${local.api_token_issuer}"
    )
    assert tf["."].locals["api_token_issuer"] == "${module.identities.api_tokens_email}"
    env = tf["."].locals["platform_env"]
    assert env["PROMPTOPT_API_TOKEN_ISSUER"] == "${local.api_token_issuer}"
    assert env["PROMPTOPT_API_TOKEN_AUDIENCE"] == "${local.api_token_audience}"
    for name in ("api_token_issuer", "api_token_jwks_uri", "api_token_audiences"):
        assert f"{name} = var.{name}" in tf["modules/gateway"].locals["document"]


def test_audit_entries_and_rate_events_expire(tf: dict[str, Module]) -> None:
    data = tf["modules/data"].variables
    ttl = {(t["collection"], t["field"]) for t in data["firestore_ttl_fields"]["default"]}
    assert {("audit", "expires_at"), ("rate_events", "expires_at")} <= ttl
    indexes = data["firestore_indexes"]["default"]
    for key, first in (
        ("audit_by_action", "action"),
        ("audit_by_actor", "actor"),
        ("audit_by_resource", "resource_id"),
    ):
        fields = [f["field_path"] for f in indexes[key]["fields"]]
        assert fields == [first, "at", "entry_id"], key
    assert (
        tf["."].locals["platform_env"]["PROMPTOPT_AUDIT_RETENTION_DAYS"]
        == "${tostring(var.audit_retention_days)}"
    )


def test_usage_reads_runs_across_experiments_through_an_index(tf: dict[str, Module]) -> None:
    """GET /usage reads a tenant's runs in a range with one collection-group query."""
    index = tf["modules/data"].variables["firestore_indexes"]["default"]["runs_per_tenant_created"]
    assert (index["collection"], index["query_scope"]) == ("runs", "COLLECTION_GROUP")
    assert [f["field_path"] for f in index["fields"]] == ["tenant", "created_at"]
    report = (REPO / "shared/promptopt/usage/report.py").read_text(encoding="utf-8")
    assert 'collection_group("runs")' in report
    assert '"tenant", "=="' in report


def test_monitoring_metrics_read_log_lines_the_code_writes(tf: dict[str, Module]) -> None:
    monitoring = tf["modules/monitoring"]
    counters, distributions = monitoring.locals["counters"], monitoring.locals["distributions"]
    assert set(counters) == {"requests", "jobs_finished", "runs_finished", "stuck", "spend_near_cap"}
    assert set(distributions) == {"latency", "spend", "model_calls"}
    for message in (
        "spend near cap",
        "model spend",
        "finished its rows",
        "finished: %s",
        "swept run",
        "made no progress",
    ):
        assert message in SOURCE, f"a metric counts {message!r}, which the code no longer logs"
    (metric,) = monitoring.of_type("google_logging_metric")
    assert metric.body["for_each"] == "${merge(local.counters, local.distributions)}"


def test_alerts_cover_errors_dead_letters_stuck_runs_spend_and_uptime(tf: dict[str, Module]) -> None:
    monitoring = tf["modules/monitoring"]
    assert set(monitoring.locals["alerts"]) == {
        "errors_5xx",
        "dead_letters",
        "runs_stuck",
        "spend_near_cap",
        "uptime",
    }
    (policy,) = monitoring.of_type("google_monitoring_alert_policy")
    assert policy.body["notification_channels"] == "${var.notification_channels}"
    assert policy.body["for_each"] == "${local.alerts}"
    assert "dead-letter-hold" in tf["."].modules["monitoring"]["dead_letter_subscription_regex"]
    assert tf["."].modules["monitoring"]["notification_channels"] == "${var.notification_channels}"
    (uptime,) = monitoring.of_type("google_monitoring_uptime_check_config")
    check = uptime.block("http_check")
    assert check is not None
    assert check["path"] == "${var.liveness_path}"
    liveness = tf["."].modules["monitoring"]["liveness_path"]
    assert 'm.auth.mode == "public"' in liveness
    assert "promptopt.http.answer_models.Health" in liveness
    assert check["use_ssl"] is True
    assert tf["."].modules["monitoring"]["gateway_host"] == "${module.gateway.host}"
    (dashboard,) = monitoring.of_type("google_monitoring_dashboard")
    assert "local.charts" in dashboard.body["dashboard_json"]
    titles = str(monitoring.locals["charts"])
    for chart in ("Requests per function", "5xx per function", "Latency", "Jobs finished by state",
                  "Runs finished by state", "Model calls", "Spend"):  # fmt: skip
        assert chart in titles, chart
    assert "monitoring.googleapis.com" in tf["modules/services"].variables["services"]["default"]


def test_every_user_route_can_check_an_api_key(manifests: dict[str, dict[str, Any]]) -> None:
    """A function that accepts API-key tokens reads the key (revocation) in Firestore."""
    for name, manifest in manifests.items():
        if manifest["trigger"]["type"] != "http" or manifest["auth"]["mode"] != "user":
            continue
        assert "google-cloud-firestore" in manifest["dependencies"], name
        roles = {g["role"] for g in manifest.get("roles") or []}
        assert roles & {"roles/datastore.user", "roles/datastore.viewer"}, name
