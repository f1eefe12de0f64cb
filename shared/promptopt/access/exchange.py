"""POST /api/v1/auth/token: an API key in, a short-lived JWT for its tenant and role out.

- A failed exchange (unknown, malformed, revoked or expired key) is one 401 `invalid_api_key`,
  logged with the client address and the key id when the key has one, never the key itself.
  Failures are limited per client address (`token_failures`); an address past it is refused with
  429 before its key is even looked at. Successful exchanges count against the key tenant's
  `token_exchange` limit.
- The token lives `api_token_ttl_s` (one hour) or until the key expires, whichever is sooner.
  It carries `tenant`, `role` and `key_id`; its `sub` is `apikey:<key id>`. To refresh, exchange
  again.
- `last_used_at` is written at most once a minute per key, so an exchanging fleet does not make
  the key a hot document.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from promptopt.access import keys, ratelimit, signer
from promptopt.auth import KEY_ID_CLAIM, ROLE_CLAIM, TENANT_CLAIM
from promptopt.config import settings

log = logging.getLogger(__name__)

LAST_USED_EVERY = timedelta(minutes=1)
MIN_TTL_S = 60
MAX_KEY_CHARS = 200  # TokenRequest.api_key


def plain_key(body: Any) -> str | None:
    """The key of a body that is plainly valid (`{"api_key": "<1 to 200 characters>"}`), else None.

    Such a body is read without building TokenRequest (no pydantic on the cold start of every
    CI pipeline's first call); anything else goes through the model, which words the 400.
    tests/unit/test_views.py checks that both agree wherever this answers.
    """
    if not isinstance(body, dict) or list(body) != ["api_key"]:
        return None
    key = body["api_key"]
    return key if isinstance(key, str) and 1 <= len(key) <= MAX_KEY_CHARS else None


def token_view(token: str, expires_in: int, tenant: str, role: str) -> dict[str, Any]:
    """The answer, as TokenResponse publishes it (tied to it by tests/unit/test_views.py)."""
    return {"token": token, "token_type": "Bearer", "expires_in": expires_in, "tenant": tenant, "role": role}


def exchange(*, api_key: str, client: str) -> dict[str, Any]:
    """Verify the key and sign its token: TokenResponse's fields.

    `client` is the caller's address (for the failure limit).
    """
    key_id = keys.parse(api_key)
    # A client can prepend X-Forwarded-For hops, so failures are limited per key id too: guessing
    # at one key's secret is throttled from any address.
    scopes = [f"addr:{client}"] + ([f"key:{key_id}"] if key_id else [])
    for scope in scopes:
        ratelimit.check("token_failures", scope)
    try:
        ref, data = keys.verify_secret(api_key)
    except keys.InvalidApiKey:
        for scope in scopes:
            ratelimit.note("token_failures", scope)
        log.warning(
            "refused an API key exchange",
            extra={"fields": {"client": client, "key_id": key_id, "reason": "invalid_api_key"}},
        )
        raise
    tenant, role, key_id = str(data["tenant"]), str(data["role"]), str(data["key_id"])
    ratelimit.admit("token_exchange", tenant)
    token, expires_in = _token(tenant, role, key_id, data.get("expires_at"))
    _touch(ref, data)
    log.info("API key exchanged", extra={"fields": {"key_id": key_id, "tenant": tenant, "client": client}})
    return token_view(token, expires_in, tenant, role)


def _token(tenant: str, role: str, key_id: str, key_expires: datetime | None) -> tuple[str, int]:
    cfg = settings()
    now = int(time.time())
    exp = now + cfg.api_token_ttl_s
    if key_expires is not None:
        exp = min(exp, int(key_expires.timestamp()))
    exp = max(exp, now + 1)
    claims: dict[str, Any] = {
        "iss": cfg.api_token_issuer,
        "aud": cfg.api_token_audience,
        "sub": f"apikey:{key_id}",
        "iat": now,
        "exp": exp,
        TENANT_CLAIM: tenant,
        ROLE_CLAIM: role,
        KEY_ID_CLAIM: key_id,
    }
    return signer.sign(claims), exp - now


def _touch(ref: Any, data: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    last = data.get("last_used_at")
    if last is None or now - last >= LAST_USED_EVERY:
        try:
            ref.update({"last_used_at": now})
        except Exception:  # noqa: BLE001 - a missed "last used" must not fail the exchange
            log.warning("could not record last use of API key %s", data.get("key_id"))


def client_address(forwarded_for: str | None, remote: str | None) -> str:
    """The caller's address: the first X-Forwarded-For hop (set by the gateway), else the peer."""
    if forwarded_for:
        first = forwarded_for.split(",")[0].strip()
        if first:
            return first[:64]
    return (remote or "unknown")[:64]
