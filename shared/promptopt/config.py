"""Settings read from the environment once per process (cached; `reset` for tests).

A plain pydantic model filled from `PROMPTOPT_*` variables: the same validation as
pydantic-settings without its ~80 ms import on every cold start.
"""

from __future__ import annotations

import functools
import json
import os

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "PROMPTOPT_"


class Settings(BaseModel):
    """Runtime configuration. Every field can be set as PROMPTOPT_<NAME>."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    project_id: str = Field(
        default="promptopt-local",
        description="GCP project that holds Firestore, Pub/Sub, Tasks and Storage (GOOGLE_CLOUD_PROJECT).",
    )
    environment: str = "local"
    firestore_database: str = "(default)"
    log_level: str = "INFO"
    # The model a request gets when it names none; Terraform sets a real model per environment.
    default_model: str = "sim:default"

    # Request limits shared by every HTTP endpoint.
    max_body_bytes: int = 1_048_576
    default_page_size: int = 20
    max_page_size: int = 100

    # Where things live. Terraform sets these per environment; the local stack points them at
    # its emulators. Topics and queues are JSON maps from logical name (e.g. "batch-completed")
    # to the resource name; function URLs default to functions_base_url/<prefix><deploy-name>.
    region: str = "us-central1"
    datasets_bucket: str = "promptopt-local-datasets"
    artifacts_bucket: str = "promptopt-local-artifacts"
    topics: dict[str, str] = Field(default_factory=dict)
    queues: dict[str, str] = Field(default_factory=dict)
    tasks_service_account: str | None = None
    function_prefix: str = ""
    functions_base_url: str | None = None
    function_urls: dict[str, str] = Field(default_factory=dict)
    # Signed upload URLs: their lifetime, and the host they name (the local stack's verifying
    # stand-in; unset in the cloud, where storage.googleapis.com is used).
    signed_url_ttl_s: int = Field(900, ge=60, le=7 * 24 * 3600)
    signed_url_endpoint: str | None = None
    # A service-account JSON key to sign those URLs with (the local stack's dev signer). Unset in
    # the cloud, where the function's own identity signs through IAM signBlob instead.
    signing_key_file: str | None = None
    # Ingest caps for every dataset file (a file above them fails with a reason that names them).
    dataset_max_rows: int = Field(1_000_000, ge=1)
    dataset_max_bytes: int = Field(500 * 1024 * 1024, ge=1)
    # How long one ingest may hold a version before a redelivery may take it over (the ingest
    # function's timeout).
    ingest_lease_s: int = Field(540, ge=10)

    # Idempotency-Key replay window and how long an in-flight reservation blocks a retry.
    idempotency_ttl_s: int = 24 * 3600
    idempotency_lease_s: int = 60

    # API-key tokens (POST /api/v1/auth/token). The issuer is the token-signing service account's
    # email in the cloud (IAM signJwt signs as it); locally the dev issuer's API-token identity,
    # which signs with the PEM key in api_token_key_file. The gateway trusts both issuers.
    api_token_issuer: str | None = None
    api_token_audience: str = "promptopt-api"  # noqa: S105 - an audience, not a secret
    api_token_key_file: str | None = None
    api_token_ttl_s: int = Field(3600, ge=60, le=3600)
    # How long a function trusts its last look at an API key (revocation takes effect within it).
    api_key_check_s: int = Field(30, ge=1, le=60)
    # Audit entries live this many days (a Firestore TTL policy on expires_at deletes them).
    audit_retention_days: int = Field(400, ge=1, le=3650)
    # Per-tenant rate limits by name ({"inference": {"limit": 120, "window_s": 60}, ...});
    # entries given here replace promptopt.access.ratelimit.DEFAULT_LIMITS.
    rate_limits: dict[str, dict[str, int]] = Field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Settings from `PROMPTOPT_<FIELD>` variables (case-insensitive) and GOOGLE_CLOUD_PROJECT."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for key, value in env.items():
            upper = key.upper()
            if upper.startswith(PREFIX) and upper[len(PREFIX) :].lower() in cls.model_fields:
                values[upper[len(PREFIX) :].lower()] = value
        project = env.get("GOOGLE_CLOUD_PROJECT")
        if project:
            values["project_id"] = project
        for name in ("topics", "queues", "function_urls", "rate_limits"):
            if name in values:
                try:
                    values[name] = json.loads(values[name])
                except ValueError:
                    raise ValueError(f"{PREFIX}{name.upper()} is not a JSON object") from None
        return cls.model_validate(values)


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


def reset() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    settings.cache_clear()
