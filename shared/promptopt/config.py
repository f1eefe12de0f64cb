"""Settings read from the environment once per process (cached; `reset` for tests).

A NamedTuple filled from `PROMPTOPT_*` variables and checked by `from_env`: the checks pydantic
would make (types, bounds), without building a pydantic model on every cold start (~10-20 ms of
CPU before the first request). Not a dataclass either: every function loads this class, and a
frozen dataclass of this size costs about 2 ms to create (a NamedTuple a tenth of that).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, NamedTuple

PREFIX = "PROMPTOPT_"


class Settings(NamedTuple):
    """Runtime configuration. Every field can be set as PROMPTOPT_<NAME>."""

    # GCP project that holds Firestore, Pub/Sub, Tasks and Storage (GOOGLE_CLOUD_PROJECT).
    project_id: str = "promptopt-local"
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
    # (An empty map default is one object shared by every Settings left without it: settings are
    # read, never changed in place.)
    region: str = "us-central1"
    datasets_bucket: str = "promptopt-local-datasets"
    artifacts_bucket: str = "promptopt-local-artifacts"
    topics: dict[str, str] = {}
    queues: dict[str, str] = {}
    tasks_service_account: str | None = None
    function_prefix: str = ""
    functions_base_url: str | None = None
    function_urls: dict[str, str] = {}
    # Signed upload URLs: their lifetime, and the host they name (the local stack's verifying
    # stand-in; unset in the cloud, where storage.googleapis.com is used).
    signed_url_ttl_s: int = 900
    signed_url_endpoint: str | None = None
    # A service-account JSON key to sign those URLs with (the local stack's dev signer). Unset in
    # the cloud, where the function's own identity signs through IAM signBlob instead.
    signing_key_file: str | None = None
    # Ingest caps for every dataset file (a file above them fails with a reason that names them).
    dataset_max_rows: int = 1_000_000
    dataset_max_bytes: int = 500 * 1024 * 1024
    # How long one ingest may hold a version before a redelivery may take it over (the ingest
    # function's timeout).
    ingest_lease_s: int = 540

    # Idempotency-Key replay window and how long an in-flight reservation blocks a retry.
    idempotency_ttl_s: int = 24 * 3600
    idempotency_lease_s: int = 60

    # API-key tokens (POST /api/v1/auth/token). The issuer is the token-signing service account's
    # email in the cloud (IAM signJwt signs as it); locally the dev issuer's API-token identity,
    # which signs with the PEM key in api_token_key_file. The gateway trusts both issuers.
    api_token_issuer: str | None = None
    api_token_audience: str = "promptopt-api"  # noqa: S105 - an audience, not a secret
    api_token_key_file: str | None = None
    api_token_ttl_s: int = 3600
    # How long a function trusts its last look at an API key (revocation takes effect within it).
    api_key_check_s: int = 30
    # Audit entries live this many days (a Firestore TTL policy on expires_at deletes them).
    audit_retention_days: int = 400
    # Per-tenant rate limits by name ({"inference": {"limit": 120, "window_s": 60}, ...});
    # entries given here replace promptopt.access.ratelimit.DEFAULT_LIMITS.
    rate_limits: dict[str, dict[str, int]] = {}

    def checked(self) -> Settings:
        """These settings, or ValueError naming the first variable of the wrong type or out of bounds."""
        for name, kind in _kinds().items():
            _check(name, kind, getattr(self, name))
        for name, (low, high) in _BOUNDS.items():
            value = getattr(self, name)
            if value < low or (high is not None and value > high):
                bound = f"at least {low}" if high is None else f"between {low} and {high}"
                raise ValueError(f"{PREFIX}{name.upper()} must be {bound}, not {value}")
        return self

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Settings from `PROMPTOPT_<FIELD>` variables (case-insensitive) and GOOGLE_CLOUD_PROJECT."""
        env = os.environ if environ is None else environ
        types = _kinds()
        values: dict[str, Any] = {}
        for key, value in env.items():
            upper = key.upper()
            name = upper[len(PREFIX) :].lower()
            if upper.startswith(PREFIX) and name in types:
                values[name] = _parse(name, types[name], value)
        project = env.get("GOOGLE_CLOUD_PROJECT")
        if project:
            values["project_id"] = project
        return cls(**values).checked()


def _kinds() -> dict[str, str]:
    """Each field's annotation as written (NamedTuple keeps postponed ones as ForwardRef)."""
    return {
        name: getattr(kind, "__forward_arg__", str(kind)) for name, kind in Settings.__annotations__.items()
    }


# Lower and upper bounds (None: no upper bound) of the numeric settings that have them.
_BOUNDS: dict[str, tuple[int, int | None]] = {
    "signed_url_ttl_s": (60, 7 * 24 * 3600),
    "dataset_max_rows": (1, None),
    "dataset_max_bytes": (1, None),
    "ingest_lease_s": (10, None),
    "api_token_ttl_s": (60, 3600),
    "api_key_check_s": (1, 60),
    "audit_retention_days": (1, 3650),
}


def _parse(name: str, kind: Any, raw: str) -> Any:
    """An environment string as the field's type (int, JSON object or string)."""
    if kind == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"{PREFIX}{name.upper()} is not an integer: {raw!r}") from None
    if str(kind).startswith("dict["):
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError(f"{PREFIX}{name.upper()} is not a JSON object") from None
    return raw


def _check(name: str, kind: Any, value: Any) -> None:
    """Refuse a value of the wrong type (the annotations are strings: `from __future__`)."""
    kind = str(kind)
    if value is None and kind.endswith("| None"):
        return
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "dict[str, dict[str, int]]":
        ok = isinstance(value, dict) and all(
            isinstance(k, str)
            and isinstance(v, dict)
            and all(isinstance(a, str) and type(b) is int for a, b in v.items())
            for k, v in value.items()
        )
    elif kind.startswith("dict["):
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"{PREFIX}{name.upper()} must be {kind.removesuffix(' | None')}, not {value!r}")


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


def reset() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    settings.cache_clear()
