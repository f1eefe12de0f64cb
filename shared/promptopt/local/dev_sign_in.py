"""The dashboard's local sign-in: a dev-issuer token for a chosen tenant and role.

Served by the local gateway only (`--dev-sign-in`), which is never deployed; in the cloud the
dashboard signs in with Firebase Authentication. The token comes back in the JSON body of a POST
(never in a URL) with `Cache-Control: no-store`, and is not logged. A JSON body is required, so a
page on another origin cannot post here without a CORS preflight, which this route never grants.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from promptopt.auth import Role
from promptopt.local import dev_issuer

PATH = "/_dev/sign-in"
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SUBJECT_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
TTL_S = dev_issuer.MAX_TTL_S


def _refuse(status: int, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": "Sign-in refused", "status": status, "detail": detail}
    body["code"] = "dev_sign_in_refused"
    response = web.Response(status=status, body=json.dumps(body).encode())
    response.content_type = "application/problem+json"
    response.headers["Cache-Control"] = "no-store"
    return response


def handler(issuer_dir: Path | None = None) -> Handler:
    """An aiohttp handler minting tokens signed by the dev issuer in `issuer_dir` (default folder)."""

    async def sign_in(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _refuse(415, "send a JSON body: {tenant, role, subject}")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _refuse(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _refuse(400, "the body must be a JSON object")
        tenant, role = body.get("tenant"), body.get("role")
        subject = body.get("subject") or "dev-user"
        if not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant):
            return _refuse(400, "tenant: lowercase letters, digits and hyphens (at most 63)")
        if role not in {r.name for r in Role}:
            return _refuse(400, "role: viewer, editor or admin")
        if not isinstance(subject, str) or not _SUBJECT_RE.fullmatch(subject):
            return _refuse(400, "subject: letters, digits, '.', '_', '@' or '-' (at most 64)")
        token = dev_issuer.mint_token(
            tenant=tenant, role=role, subject=subject, ttl_s=TTL_S, issuer_dir=issuer_dir
        )
        payload = {
            "token": token,
            "expires_at": int(time.time()) + TTL_S,
            "subject": subject,
            "tenant": tenant,
            "role": role,
        }
        response = web.json_response(payload)
        response.headers["Cache-Control"] = "no-store"
        return response

    return sign_in
