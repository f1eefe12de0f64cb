"""Settings read from the environment once per process (cached; `reset` for tests)."""

from __future__ import annotations

import functools

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as PROMPTOPT_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="PROMPTOPT_", extra="ignore")

    project_id: str = Field(
        default="promptopt-local",
        validation_alias="GOOGLE_CLOUD_PROJECT",
        description="GCP project that holds Firestore, Pub/Sub, Tasks and Storage.",
    )
    environment: str = "local"
    firestore_database: str = "(default)"
    log_level: str = "INFO"

    # Request limits shared by every HTTP endpoint.
    max_body_bytes: int = 1_048_576
    max_metadata_bytes: int = 16_384
    default_page_size: int = 20
    max_page_size: int = 100

    # Idempotency-Key replay window and how long an in-flight reservation blocks a retry.
    idempotency_ttl_s: int = 24 * 3600
    idempotency_lease_s: int = 60


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()


def reset() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    settings.cache_clear()
