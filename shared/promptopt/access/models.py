"""Schemas of machine access: API keys, the token exchange, the caller, members and the audit log."""

# Annotations are not postponed, for cold start: see promptopt.http.models.
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from promptopt.access.keys import MAX_KEY_DAYS, MAX_KEY_NAME_CHARS
from promptopt.access.members import MAX_EMAIL_CHARS
from promptopt.http.models import PageQuery, RequestModel, ResponseModel

RoleName = Literal["viewer", "editor", "admin"]
KeyName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_KEY_NAME_CHARS, strip_whitespace=True)
]


class ApiKeyCreate(RequestModel):
    """POST /api/v1/api-keys: a key for a machine of this tenant."""

    name: KeyName = Field(description="what the key is for, e.g. ci-nightly")
    role: RoleName = Field(description="the role its tokens carry: at most the creator's own")
    expires_in_days: int | None = Field(
        None, ge=1, le=MAX_KEY_DAYS, description="days until the key stops working (default: never)"
    )


class ApiKey(ResponseModel):
    """An API key as listed: never its secret, only a prefix to recognise it by."""

    key_id: str
    name: str
    role: RoleName
    prefix: str = Field(description="the first characters of the secret, to tell keys apart")
    status: Literal["active", "revoked", "expired"]
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = Field(None, description="last token exchange (to the minute)")


class ApiKeyCreated(ApiKey):
    """The new key with its secret, shown this once: only a hash of it is stored."""

    secret: str = Field(description="the API key; store it now, it cannot be shown again")


class ApiKeyPage(ResponseModel):
    """The tenant's API keys, newest first."""

    items: list[ApiKey]
    next_page_token: str | None = None


class TokenRequest(RequestModel):
    """POST /api/v1/auth/token."""

    api_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TokenResponse(ResponseModel):
    """A short-lived bearer token for the key's tenant and role; exchange again to refresh."""

    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name
    expires_in: int = Field(description="seconds until the token expires (at most 3600)")
    tenant: str
    role: RoleName


class Me(ResponseModel):
    """GET /api/v1/me: who the API takes the caller to be."""

    subject: str
    tenant: str
    role: RoleName
    credential: Literal["user", "api_key"] = Field(
        description="user: an identity provider's ID token; api_key: a token exchanged for an API key"
    )
    key_id: str | None = None


class Member(ResponseModel):
    """A member of the tenant and their role."""

    uid: str
    role: RoleName
    email: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


class MemberPage(ResponseModel):
    """The tenant's members."""

    items: list[Member]
    next_page_token: str | None = None


class MemberRole(RequestModel):
    """PUT /api/v1/members/{uid}: the member's role in this tenant."""

    role: RoleName
    email: Annotated[str, StringConstraints(max_length=MAX_EMAIL_CHARS)] | None = None


class AuditQuery(PageQuery):
    """Filters of GET /api/v1/audit (one of action, actor, resource_id at a time)."""

    action: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="the operation, e.g. prompts_create"
    )
    actor: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="the subject that made the change"
    )
    resource_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    since: datetime | None = Field(None, description="entries at or after this time (ISO 8601)")
    until: datetime | None = Field(None, description="entries before this time (ISO 8601)")


class AuditEntry(ResponseModel):
    """One recorded write: who, what, which id, when, with which credential."""

    entry_id: str
    at: datetime
    action: str = Field(description="the operation (the function's name)")
    method: str
    path: str
    status: int
    resource_id: str | None = None
    actor: str
    role: RoleName
    credential: Literal["user", "api_key"]
    key_id: str | None = None
    trace: str | None = None


class AuditPage(ResponseModel):
    """Audit entries, newest first."""

    items: list[AuditEntry]
    next_page_token: str | None = None


class Check(ResponseModel):
    """One backing service (GET /api/v1/health/ready)."""

    service: str
    status: Literal["ok", "failed", "skipped"]
    latency_ms: float | None = None
    detail: str | None = Field(None, description="why a check failed or was skipped (no secrets, no bodies)")


class Readiness(ResponseModel):
    """Every backing service's check."""

    status: Literal["ready", "degraded"]
    checks: list[Check]
