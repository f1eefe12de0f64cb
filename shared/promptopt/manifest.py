"""The function manifest: `functions/<name>/function.yaml`, the single source of truth.

Terraform, the bundle builder, the OpenAPI generator and the local stack all read these files
through this module (Terraform through `yamldecode` of the same files), so a function is never
listed by hand in two places.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promptopt import routes
from promptopt.auth import Role

MANIFEST_FILE = "function.yaml"
BUNDLED_SPEC_FILE = "function.json"  # written into each bundle by the builder (read: http/spec.py)
# What every function's environment gets besides its manifest's env and the platform's wiring
# (terraform/modules/function sets the same): no function uses a pydantic plugin, and looking for
# one reads every installed distribution's entry points when the first model is built, in every
# cold start.
RUNTIME_ENV = {"PYDANTIC_DISABLE_PLUGINS": "__all__", "PROMPTOPT_GC_PAUSED_UNTIL_SERVING": "1"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
# Everything routed is under /api/, except the web dashboard's pages and assets.
_ROUTED_PREFIXES = ("/api/", "/dashboard/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpTrigger(_Strict):
    """An HTTPS endpoint routed by the API gateway."""

    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    summary: str
    request_model: str | None = Field(None, description="dotted path of the pydantic body model")
    query_model: str | None = Field(None, description="dotted path of the pydantic query model")
    response_model: str | None = Field(None, description="dotted path of the pydantic response model")
    success_status: int = 200
    headers: list[str] = Field(default_factory=list, description="request headers the operation reads")
    errors: list[int] = Field(default_factory=list, description="error statuses besides the common ones")
    max_body_bytes: int | None = Field(
        None,
        ge=1,
        le=32 * 1024 * 1024,
        description="body cap when larger than the default (gateway max 32 MB)",
    )
    rate_limit: str | None = Field(
        None, description="per-tenant rate limit applied before the handler (promptopt.access.ratelimit)"
    )
    audit: bool | None = Field(
        None,
        description="record successful calls in the tenant's audit log; default: every method but GET. "
        "A POST that changes nothing (a computation) says false",
    )

    @property
    def audited(self) -> bool:
        """Whether a successful call is a write recorded in the audit log."""
        return self.audit if self.audit is not None else self.method != "GET"

    @field_validator("path")
    @classmethod
    def _path_shape(cls, value: str) -> str:
        if not value.startswith(_ROUTED_PREFIXES) or value.endswith("/"):
            raise ValueError("paths start with /api/ (or /dashboard/) and have no trailing slash")
        if "=**}" in value and not value.endswith("=**}"):
            raise ValueError("a {name=**} wildcard can only end a path")
        return value

    @property
    def path_params(self) -> list[str]:
        """Names of the `{placeholders}` in the path, in order."""
        return routes.path_params(self.path)

    @functools.cached_property
    def path_regex(self) -> re.Pattern[str]:
        """A regex matching concrete paths of this route, capturing each parameter."""
        return routes.path_regex(self.path)


class PubsubTrigger(_Strict):
    """A push subscription (through Eventarc) on a topic."""

    type: Literal["pubsub"]
    topic: str


class StorageTrigger(_Strict):
    """An Eventarc trigger on a bucket event."""

    type: Literal["storage"]
    bucket: str = Field(description="logical bucket name, e.g. datasets")
    event_type: str = "google.cloud.storage.object.v1.finalized"


class TaskTrigger(_Strict):
    """An HTTP target of a Cloud Tasks queue (OIDC-authenticated by the tasks service account)."""

    type: Literal["task"]
    queue: str


class SchedulerTrigger(_Strict):
    """Cloud Scheduler publishes to a topic on a cron schedule; the function consumes the topic."""

    type: Literal["scheduler"]
    schedule: str
    topic: str
    time_zone: str = "Etc/UTC"


Trigger = Annotated[
    HttpTrigger | PubsubTrigger | StorageTrigger | TaskTrigger | SchedulerTrigger,
    Field(discriminator="type"),
]


class Auth(_Strict):
    """Who may invoke: anyone (public), a user with at least `min_role`, or only its trigger."""

    mode: Literal["public", "user", "internal"]
    min_role: Literal["viewer", "editor", "admin"] | None = None

    @property
    def role(self) -> Role | None:
        """The minimum role as a comparable value."""
        return Role[self.min_role] if self.min_role else None


class Resources(_Strict):
    """Cloud Run (gen2) sizing."""

    memory: str = "256Mi"
    cpu: str = "1"
    timeout_s: int = Field(60, ge=1, le=3600)
    min_instances: int = Field(0, ge=0)
    max_instances: int = Field(10, ge=1)
    concurrency: int = Field(80, ge=1, le=1000)


class SecretRef(_Strict):
    """A Secret Manager secret exposed to the function as an environment variable."""

    env: str
    secret: str
    version: str = "latest"


class RoleGrant(_Strict):
    """A project role granted to the function's own service account, with the reason."""

    role: str
    why: str


class BucketRoleGrant(_Strict):
    """A role on one of the platform's buckets (logical name), granted to the function's account."""

    bucket: Literal["datasets", "artifacts"]
    role: str
    why: str


class FunctionSpec(_Strict):
    """One deployed function."""

    name: str
    description: str
    entry_point: str = "handle"
    trigger: Trigger
    auth: Auth
    resources: Resources = Resources()
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    roles: list[RoleGrant] = Field(default_factory=list)
    bucket_roles: list[BucketRoleGrant] = Field(default_factory=list)
    sign_urls: bool = Field(False, description="signs URLs as itself (IAM signBlob on its own account)")
    sign_tokens: bool = Field(
        False, description="signs API tokens as the platform's token issuer account (IAM signJwt on it)"
    )
    dependencies: list[str] = Field(description="distribution names this function imports at run time")

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("names are lowercase letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _auth_fits_trigger(self) -> FunctionSpec:
        # Endpoints are reached through the gateway (public or user); everything else only by
        # its trigger's service account, so an "internal" endpoint or a "user" task is a mistake.
        if self.trigger.type == "http" and self.auth.mode == "internal":
            raise ValueError("an http endpoint's auth is public or user; internal steps use another trigger")
        if self.trigger.type != "http" and self.auth.mode != "internal":
            raise ValueError(f"a {self.trigger.type} function is internal (invoked only by its trigger)")
        if (self.auth.mode == "user") != (self.auth.min_role is not None):
            raise ValueError("min_role is required for auth mode user, and only there")
        return self

    @property
    def deploy_name(self) -> str:
        """The Cloud Functions name (hyphens; the environment prefix is added by Terraform)."""
        return self.name.replace("_", "-")

    @property
    def is_http(self) -> bool:
        """True for gateway-routed endpoints."""
        return isinstance(self.trigger, HttpTrigger)

    @property
    def http(self) -> HttpTrigger:
        """The HTTP trigger (only for endpoints)."""
        if not isinstance(self.trigger, HttpTrigger):
            raise TypeError(f"{self.name} is not an HTTP function")
        return self.trigger

    @property
    def signature_type(self) -> str:
        """functions-framework signature: http for endpoints and task targets, cloudevent otherwise."""
        return "http" if self.trigger.type in ("http", "task") else "cloudevent"


def repo_root() -> Path:
    """The repository root: PROMPTOPT_REPO_ROOT, else the nearest parent holding functions/."""
    env = os.environ.get("PROMPTOPT_REPO_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "functions").is_dir() and (candidate / "pyproject.toml").is_file():
                return candidate
    raise FileNotFoundError("cannot find the repository root (set PROMPTOPT_REPO_ROOT)")


def read_spec(function_dir: Path) -> FunctionSpec:
    """The spec of the function whose files are in `function_dir` (a source folder or a bundle).

    A bundle carries the builder's validated `function.json`; a source folder only `function.yaml`.
    """
    bundled = function_dir / BUNDLED_SPEC_FILE
    if bundled.is_file():
        return FunctionSpec.model_validate_json(bundled.read_bytes())
    import yaml  # only source trees need the YAML parser

    data = yaml.safe_load((function_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    return FunctionSpec.model_validate(data)


@functools.lru_cache(maxsize=8)
def spec_for_main(source: str) -> FunctionSpec:
    """The spec of the function whose entry point is the file `source` (a main.py's `__file__`)."""
    return read_spec(Path(source).resolve().parent)


def load_function_spec(function_dir: Path) -> FunctionSpec:
    """Read and validate one function's manifest; its name must match its folder."""
    path = function_dir / MANIFEST_FILE
    spec = read_spec(function_dir)
    if spec.name != function_dir.name:
        raise ValueError(f"{path}: name {spec.name!r} does not match its folder {function_dir.name!r}")
    return spec


@functools.lru_cache(maxsize=4)
def load_manifest(root: Path | None = None) -> tuple[FunctionSpec, ...]:
    """Every function under `<root>/functions`, sorted by name; routes must be unique."""
    base = (root or repo_root()) / "functions"
    specs = tuple(load_function_spec(d) for d in sorted(base.iterdir()) if (d / MANIFEST_FILE).is_file())
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        if spec.is_http:
            key = (spec.http.method, spec.http.path)
            if key in seen:
                raise ValueError(f"{spec.name} and {seen[key]} both claim {key[0]} {key[1]}")
            seen[key] = spec.name
    return specs
