"""What `serve` does around every handler for access: API-key checks, rate limits, the audit log.

Each piece imports Firestore only when it has work to do: a person's token on a GET costs nothing
here; a token exchanged for an API key costs one key read per key per `api_key_check_s`; a
rate-limited route one event write and one count; a write one audit entry.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import flask

    from promptopt.auth import Principal
    from promptopt.http.endpoint import Call


def check_credential(principal: Principal) -> None:
    """401 when the API key behind an exchanged token is revoked or expired."""
    if principal.credential == "api_key":
        from promptopt.access import keys

        keys.check_active(principal)


def admit(call: Call) -> dict[str, str]:
    """Apply the route's rate limit (429 past it); the RateLimit headers for the answer."""
    name = call.spec.rate_limit
    if not name or call.principal is None:
        return {}
    from promptopt.access import ratelimit

    return ratelimit.admit(name, call.principal.tenant).headers()


def audit(call: Call, response: flask.Response, trace: str | None) -> None:
    """Record a successful write in the tenant's audit log (not a replayed one: it wrote nothing)."""
    if call.principal is None or not call.spec.audited:
        return
    if not 200 <= response.status_code < 300 or response.headers.get("Idempotent-Replayed") == "true":
        return
    from promptopt.access import audit as audit_log

    body: Any = None
    if response.mimetype == "application/json":
        try:
            body = json.loads(response.get_data())
        except ValueError:
            body = None
    audit_log.record(
        principal=call.principal,
        action=call.spec.name,
        method=call.request.method,
        path=call.request.path,
        status=response.status_code,
        resource=audit_log.resource_id(call.path, response.headers.get("Location"), body, call.request.path),
        trace=trace,
    )
