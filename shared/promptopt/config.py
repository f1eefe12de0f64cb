"""Settings read from the environment once per process (cached; `reset` for tests).

A plain pydantic model filled from `PROMPTOPT_*` variables: the same validation as
pydantic-settings without its ~80 ms import on every cold start.
"""

from __future__ import annotations

import functools
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

    # Idempotency-Key replay window and how long an in-flight reservation blocks a retry.
    idempotency_ttl_s: int = 24 * 3600
    idempotency_lease_s: int = 60

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
        return cls.model_validate(values)


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


def reset() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    settings.cache_clear()
