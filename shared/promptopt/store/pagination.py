"""Opaque page tokens: the last item's sort key, signed and bound to the tenant and the query.

A token is `base64url(JSON {"c": cursor, "s": query fingerprint}) "." base64url(HMAC-SHA256)`,
the MAC taken over the tenant, the payload and a domain tag. A hand-made, altered or other
tenant's token fails the MAC and is a 400 `invalid_page_token`; a genuine token replayed with
other filters is refused the same way, with a message saying so.

The key derives from the platform secret `signing-key` (Secret Manager in the cloud, exposed to
each listing function through its manifest as `PROMPTOPT_SECRET_SIGNING_KEY`; that variable or the
secrets directory locally, see promptopt.secrets), separated from its other uses by a domain tag.
In the `local` environment without one, a fixed development key is used. It is read on first
use, never at import.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any, TypeVar

from promptopt.config import settings
from promptopt.errors import InvalidRequest

C = TypeVar("C")
SECRET_NAME = "signing_key"  # noqa: S105 - the secret's name, not its value
_DEV_KEY = b"promptopt-local-development-page-token-key"
_DOMAIN = b"promptopt/page-token/v1\x00"
_MAC_BYTES = 16


class PageTokenKeyMissing(RuntimeError):
    """No signing key is configured outside the local environment."""


def _key() -> bytes:
    from promptopt import secrets

    try:
        value = secrets.secret(SECRET_NAME).encode()
    except secrets.SecretNotFoundError:
        if settings().environment != "local":
            raise PageTokenKeyMissing(
                "the signing-key secret has no value; add one (gcloud secrets versions add signing-key)"
            ) from None
        value = _DEV_KEY
    return hashlib.sha256(_DOMAIN + value).digest()


def _fingerprint(scope: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(tenant: str, payload: str) -> bytes:
    message = _DOMAIN + tenant.encode() + b"\x00" + payload.encode()
    return hmac.new(_key(), message, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_token(cursor: list[Any], scope: dict[str, Any], *, tenant: str) -> str:
    """A token resuming after `cursor` for the same tenant and query `scope` (filters, sort)."""
    raw = json.dumps({"c": cursor, "s": _fingerprint(scope)}, default=str, separators=(",", ":"))
    payload = _b64(raw.encode())
    return f"{payload}.{_b64(_mac(tenant, payload))}"


def _invalid() -> InvalidRequest:
    return InvalidRequest("page_token is not valid", code="invalid_page_token")


def decode_token(
    token: str | None,
    scope: dict[str, Any],
    parse: Callable[[list[Any]], C] = list,  # type: ignore[assignment]
    *,
    tenant: str,
) -> C | None:
    """The cursor in `token` as `parse` reads it, or None for the first page.

    A token that this deployment did not sign for `tenant` is a 400 before its content is read;
    `parse` still checks the cursor's shape (defence in depth).
    """
    if not token:
        return None
    payload, _, mac = token.partition(".")
    try:
        given = _unb64(mac)
    except (ValueError, binascii.Error):
        raise _invalid() from None
    if not payload or not hmac.compare_digest(given, _mac(tenant, payload)):
        raise _invalid()
    try:
        data = json.loads(_unb64(payload))
        cursor, fingerprint = data["c"], data["s"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid() from None
    if fingerprint != _fingerprint(scope) or not isinstance(cursor, list):
        raise InvalidRequest(
            "page_token belongs to a different query; restart without it", code="invalid_page_token"
        )
    try:
        return parse(cursor)
    except (ValueError, TypeError, IndexError, KeyError):
        raise _invalid() from None


def page_size(requested: int | None) -> int:
    """The page size to use, within the configured bounds."""
    cfg = settings()
    return min(requested or cfg.default_page_size, cfg.max_page_size)
