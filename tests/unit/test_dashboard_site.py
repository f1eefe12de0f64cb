"""The dashboard function's files and headers, and the local pieces it relies on."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import flask
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptopt import config
from promptopt.dashboard import serve
from promptopt.dashboard.headers import content_security_policy
from promptopt.dashboard.site import Site
from promptopt.local import dev_issuer, dev_sign_in
from promptopt.local.gateway import Router, _operations
from promptopt.manifest import load_manifest, repo_root

STATIC = repo_root() / "functions" / "web_dashboard" / "static"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("PROMPTOPT_SIGNED_URL_ENDPOINT", raising=False)
    config.reset()
    serve.reset()
    yield
    config.reset()
    serve.reset()


def _get(path: str, headers: dict[str, str] | None = None) -> flask.Response:
    app = flask.Flask(__name__)
    with app.test_request_context(path, headers=headers or {}):
        return serve.respond(flask.request, STATIC)


def test_the_build_id_hashes_every_asset(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        "<script src='{{ASSETS}}/a.js'></script>{{CONFIG}}", encoding="utf-8"
    )
    (tmp_path / "a.js").write_text("1", encoding="utf-8")
    first = Site(tmp_path)
    (tmp_path / "a.js").write_text("2", encoding="utf-8")
    second = Site(tmp_path)
    assert first.build != second.build
    assert list(second.assets) == [f"assets/{second.build}/a.js"]
    shell = second.shell({"x": "</script><script>alert(1)</script>"}).decode()
    assert "<script>alert(1)" not in shell  # configuration is escaped data, never markup


def test_the_shell_is_never_cached_and_assets_are_immutable() -> None:
    shell = _get("/dashboard/")
    assert shell.status_code == 200
    assert shell.headers["Cache-Control"] == "no-store"
    assert shell.headers["X-Frame-Options"] == "DENY"
    text = shell.get_data(as_text=True)
    asset = re.search(r'src="/dashboard/(assets/[0-9a-f]{16}/js/app\.js)"', text)
    assert asset
    meta = re.search(r'name="promptopt-config" content="([^"]*)"', text)
    assert meta
    assert json.loads(meta.group(1).replace("&quot;", '"'))["auth"] == "dev"  # environment local
    script = _get("/dashboard/" + asset.group(1))
    assert script.status_code == 200
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert _get("/dashboard/" + asset.group(1), {"If-None-Match": script.headers["ETag"]}).status_code == 304
    assert _get("/dashboard/assets/0000000000000000/js/app.js").status_code == 404
    assert _get("/dashboard/../../main.py").status_code == 404


def test_every_asset_the_page_loads_is_vendored_or_ours() -> None:
    for path in STATIC.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        for spec in re.findall(r'(?:from|import)\s*\(?\s*"([^"]+)"', text):
            assert spec.startswith("."), f"{path.name} imports {spec} from outside the site"
    assert (STATIC / "vendor" / "LICENSES" / "chart.js-LICENSE.md").is_file()


def test_the_csp_allows_no_inline_script_and_names_the_upload_origin() -> None:
    csp = content_security_policy(upload_origin="https://storage.googleapis.com", firebase_auth_domain=None)
    assert "script-src 'self';" in csp
    assert "unsafe" not in csp
    assert "connect-src 'self' https://storage.googleapis.com;" in csp
    assert "frame-src 'none'" in csp
    with_firebase = content_security_policy(upload_origin="x", firebase_auth_domain="p.firebaseapp.com")
    assert "frame-src https://p.firebaseapp.com" in with_firebase
    assert "https://securetoken.googleapis.com" in with_firebase


def test_the_gateway_routes_the_wildcard_path_to_the_dashboard() -> None:
    from promptopt.tooling.openapi import build_spec

    router = Router(_operations(build_spec(), {}))
    for path in ("/dashboard/", "/dashboard/assets/abc/js/app.js"):
        route = router.match(path, "GET")
        assert route is not None
        assert route.operations["GET"].name == "web_dashboard"
    assert router.match("/dashboardx", "GET") is None
    spec = next(f for f in load_manifest() if f.name == "web_dashboard")
    assert spec.http.path_params == ["path"]
    assert spec.http.path_regex.match("/dashboard/a/b.js")


def test_dev_sign_in_mints_a_token_for_the_chosen_tenant_and_role(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = web.Application()
        app.router.add_post(dev_sign_in.PATH, dev_sign_in.handler(tmp_path))
        async with TestClient(TestServer(app)) as client:
            ok = await client.post(
                dev_sign_in.PATH, json={"tenant": "acme", "role": "viewer", "subject": "ann"}
            )
            assert ok.status == 200
            assert ok.headers["Cache-Control"] == "no-store"
            body = await ok.json()
            claims = jwt.decode(body["token"], options={"verify_signature": False})
            assert (claims["tenant"], claims["role"], claims["sub"]) == ("acme", "viewer", "ann")
            assert claims["exp"] - claims["iat"] <= dev_issuer.MAX_TTL_S
            bad = await client.post(dev_sign_in.PATH, json={"tenant": "acme", "role": "owner"})
            assert bad.status == 400
            form = await client.post(dev_sign_in.PATH, data="tenant=acme&role=admin")
            assert form.status == 415  # a cross-origin form post cannot mint a token

    asyncio.run(scenario())
