"""Answer one dashboard request: the shell, an asset, or a 404, always with the security headers."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import flask

from promptopt import startup
from promptopt.config import settings
from promptopt.dashboard.headers import CLOUD_STORAGE, content_security_policy, origin, security_headers
from promptopt.dashboard.site import ASSETS, PREFIX, Site

FIREBASE_ENV = "PROMPTOPT_FIREBASE_WEB_CONFIG"  # {"apiKey", "authDomain", "projectId"} from Terraform
_ONE_YEAR = "public, max-age=31536000, immutable"


@functools.lru_cache(maxsize=2)
def _site(static_dir: str) -> Site:
    return Site(Path(static_dir))


@functools.lru_cache(maxsize=1)
def _client_config() -> dict[str, Any]:
    """What the page needs to know; public by nature (no secrets: a Firebase web config is not one)."""
    env = settings().environment
    raw = os.environ.get(FIREBASE_ENV)
    firebase = json.loads(raw) if raw else None
    auth = "dev" if env == "local" else "firebase"
    return {"environment": env, "auth": auth, "firebase": firebase if auth == "firebase" else None}


@functools.lru_cache(maxsize=1)
def _headers() -> dict[str, str]:
    config = _client_config()
    endpoint = settings().signed_url_endpoint
    firebase = config.get("firebase") or {}
    csp = content_security_policy(
        upload_origin=origin(endpoint) if endpoint else CLOUD_STORAGE,
        firebase_auth_domain=firebase.get("authDomain"),
    )
    return security_headers(csp, popups=config["auth"] == "firebase")


def reset() -> None:
    """Forget cached configuration (tests)."""
    _site.cache_clear()
    _client_config.cache_clear()
    _headers.cache_clear()


def _reply(
    body: bytes, status: int, content_type: str, cache: str, extra: dict[str, str] | None = None
) -> flask.Response:
    response = flask.Response(body, status=status, content_type=content_type)
    response.headers.update(_headers())
    response.headers["Cache-Control"] = cache
    response.headers.update(extra or {})
    return response


def _not_found(path: str) -> flask.Response:
    body = {
        "type": "https://promptopt.dev/problems/route_not_found",
        "title": "Not found",
        "status": 404,
        "detail": "no such dashboard page or asset (an old release's assets are gone: reload the page)",
        "code": "route_not_found",
        "instance": path[:200],
    }
    return _reply(json.dumps(body).encode(), 404, "application/problem+json", "no-store")


def respond(request: flask.Request, static_dir: Path) -> flask.Response:
    """The response to a GET under /dashboard/ (the gateway routes only GET here)."""
    try:
        return _respond(request, static_dir)
    finally:
        startup.resume()  # the instance has answered once: collect garbage from here on


def _respond(request: flask.Request, static_dir: Path) -> flask.Response:
    if request.method not in ("GET", "HEAD"):
        response = _reply(b"", 405, "text/plain", "no-store", {"Allow": "GET"})
        return response
    site = _site(str(static_dir))
    rel = request.path.removeprefix(PREFIX)
    if rel in ("", "index.html"):
        shell = site.shell(_client_config())
        return _reply(shell, 200, "text/html; charset=utf-8", "no-store")
    asset = site.assets.get(rel) if rel.startswith(ASSETS) else None
    if asset is None:
        return _not_found(request.path)
    headers = {"ETag": asset.etag}
    if asset.etag in (request.headers.get("If-None-Match") or ""):
        return _reply(b"", 304, asset.content_type, _ONE_YEAR, headers)
    return _reply(asset.body, 200, asset.content_type, _ONE_YEAR, headers)
