"""The caller's identity, built only from the claims the API gateway forwards."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

from promptopt.errors import Forbidden, Unauthenticated

USERINFO_HEADER = "X-Apigateway-Api-Userinfo"
TENANT_CLAIM = "tenant"
ROLE_CLAIM = "role"
# Tokens from POST /api/v1/auth/token name the API key they were exchanged for.
KEY_ID_CLAIM = "key_id"
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Role(IntEnum):
    """Roles are ordered: each includes everything the lower ones may do."""

    viewer = 1
    editor = 2
    admin = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        """Role from its name; unknown names are refused rather than defaulted."""
        try:
            return cls[value]
        except KeyError:
            raise Forbidden(f"unknown role {value!r}", code="unknown_role") from None


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: subject, tenant, role, and the credential the call was made with.

    `credential` is "api_key" for a token the platform issued in exchange for an API key (its
    issuer is the platform's token issuer and it names the key), else "user" (an ID token of
    the identity provider). A plain dataclass: built on every request, from claims already
    checked by `principal_from_claims`, it needs no pydantic model (cold start).
    """

    subject: str
    tenant: str
    role: Role
    credential: Literal["user", "api_key"] = "user"
    key_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            raise TypeError(f"role must be a Role, not {self.role!r}")
        if self.credential not in ("user", "api_key"):
            raise ValueError(f"unknown credential {self.credential!r}")

    def require(self, minimum: Role) -> None:
        """Raise 403 unless this principal holds at least `minimum`."""
        if self.role < minimum:
            raise Forbidden(
                f"this operation needs the {minimum.name} role; you have {self.role.name}",
                code="role_too_low",
            )


def decode_userinfo(header: str) -> dict[str, Any]:
    """Decode API Gateway's base64url JSON claims header (padding optional)."""
    padded = header + "=" * (-len(header) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise Unauthenticated("the gateway identity header is unreadable", code="bad_identity") from exc
    if not isinstance(claims, dict):
        raise Unauthenticated("the gateway identity header is not a claims object", code="bad_identity")
    return claims


def encode_userinfo(claims: dict[str, Any]) -> str:
    """Encode claims the way API Gateway forwards them (base64url, no padding)."""
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def principal_from_claims(claims: dict[str, Any], *, api_key_issuer: str | None = None) -> Principal:
    """Build the principal; a token without tenant or role is refused, never defaulted.

    A token is an API key's only when `api_key_issuer` (the platform's token issuer) issued it:
    a `key_id` claim in another issuer's token means nothing.
    """
    subject = claims.get("sub")
    tenant = claims.get(TENANT_CLAIM)
    role = claims.get(ROLE_CLAIM)
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("the token has no subject", code="bad_identity")
    if not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant):
        raise Forbidden("the token carries no valid tenant claim", code="no_tenant")
    if not isinstance(role, str):
        raise Forbidden("the token carries no role claim", code="no_role")
    key_id = claims.get(KEY_ID_CLAIM)
    if api_key_issuer and claims.get("iss") == api_key_issuer:
        if not isinstance(key_id, str) or not key_id:
            raise Unauthenticated("the token names no API key", code="bad_identity")
        return Principal(
            subject=subject, tenant=tenant, role=Role.parse(role), credential="api_key", key_id=key_id
        )
    return Principal(subject=subject, tenant=tenant, role=Role.parse(role))


def principal_from_header(header: str | None, *, api_key_issuer: str | None = None) -> Principal:
    """The principal behind a request, from the gateway header."""
    if not header:
        raise Unauthenticated("no identity reached the function; call it through the API gateway")
    return principal_from_claims(decode_userinfo(header), api_key_issuer=api_key_issuer)
