"""Machine access through the local gateway: an API key's whole life, and a CI job that holds only a key.

The gateway trusts two issuers, as in the cloud: the dev issuer for people and the platform's
API-token identity (the local stand-in for the token-signing service account) for exchanged tokens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from promptopt.local.stack import Stack
from promptopt.manifest import load_manifest

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("promptopt"))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _new_key(gateway: httpx.Client, admin: str, role: str, **body: Any) -> dict[str, Any]:
    r = gateway.post("/api/v1/api-keys", json={"name": "ci", "role": role, **body}, headers=_bearer(admin))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _exchange(gateway: httpx.Client, secret: str) -> httpx.Response:
    return gateway.post("/api/v1/auth/token", json={"api_key": secret})


def test_key_lifecycle(gateway: httpx.Client, token_for: Callable[..., str]) -> None:
    admin = token_for("keys-e2e", "admin", subject="owner")
    created = _new_key(gateway, admin, "editor")
    exchanged = _exchange(gateway, created["secret"])
    assert exchanged.status_code == 200, exchanged.text
    body = exchanged.json()
    assert set(body) == {"token", "token_type", "expires_in", "tenant", "role"}
    assert (body["token_type"], body["tenant"], body["role"]) == ("Bearer", "keys-e2e", "editor")
    assert 0 < body["expires_in"] <= 3600
    token = body["token"]

    me = gateway.get("/api/v1/me", headers=_bearer(token)).json()
    assert (me["credential"], me["key_id"], me["role"]) == ("api_key", created["key_id"], "editor")
    made = gateway.post("/api/v1/prompts", json={"output_prompt": "Q: {input}"}, headers=_bearer(token))
    assert made.status_code == 201, made.text

    listed = gateway.get("/api/v1/api-keys", headers=_bearer(admin)).json()["items"]
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert listed[0]["last_used_at"] is not None
    assert "secret" not in listed[0]

    revoked = gateway.delete(f"/api/v1/api-keys/{created['key_id']}", headers=_bearer(admin))
    assert revoked.status_code == 204
    again = _exchange(gateway, created["secret"])
    assert (again.status_code, again.json()["code"]) == (401, "invalid_api_key")
    # A token issued before the revocation is refused within a minute (functions re-read a key
    # every 30 s at most).
    deadline = time.monotonic() + 40
    while True:
        r = gateway.get("/api/v1/prompts", headers=_bearer(token))
        if r.status_code == 401:
            assert r.json()["code"] == "api_key_revoked"
            break
        assert r.status_code == 200
        assert time.monotonic() < deadline, "a revoked key's token still works after 40 s"
        time.sleep(1)


def test_bad_keys_are_refused(gateway: httpx.Client, token_for: Callable[..., str]) -> None:
    admin = token_for("keys-e2e-bad", "admin", subject="owner")
    expired = _new_key(gateway, admin, "viewer", expires_in_days=1)
    for secret in ("nonsense", expired["secret"][:-3] + "abc", "pok_" + "0" * 16 + "_" + "z" * 43):
        r = _exchange(gateway, secret)
        assert (r.status_code, r.json()["code"]) == (401, "invalid_api_key"), secret[:8]
    # A key of another tenant: its token reaches only its own tenant's data.
    other_admin = token_for("keys-e2e-other", "admin", subject="owner")
    theirs = _exchange(gateway, _new_key(gateway, other_admin, "admin")["secret"]).json()["token"]
    mine = gateway.post("/api/v1/prompts", json={"output_prompt": "{input}"}, headers=_bearer(admin)).json()
    assert gateway.get(f"/api/v1/prompts/{mine['prompt_id']}", headers=_bearer(theirs)).status_code == 404
    assert gateway.delete(f"/api/v1/api-keys/{expired['key_id']}", headers=_bearer(theirs)).status_code == 403
    # A key above its creator's role cannot be made (an editor is refused key management at all).
    editor = token_for("keys-e2e-bad", "editor", subject="dev")
    r = gateway.post("/api/v1/api-keys", json={"name": "x", "role": "admin"}, headers=_bearer(editor))
    assert r.status_code == 403


def test_an_exchanged_token_is_accepted_where_a_user_token_is_and_nowhere_more(
    gateway: httpx.Client, token_for: Callable[..., str], issuer_dir: Path
) -> None:
    admin = token_for("keys-e2e-scope", "admin", subject="owner")
    machine = _exchange(gateway, _new_key(gateway, admin, "viewer")["secret"]).json()["token"]
    person = token_for("keys-e2e-scope", "viewer", subject="someone")
    # Every GET route without path parameters answers the machine exactly as the person.
    for spec in load_manifest():
        if not spec.is_http or spec.http.method != "GET" or spec.http.path_params or spec.auth.mode != "user":
            continue
        as_person = gateway.get(spec.http.path, headers=_bearer(person)).status_code
        as_machine = gateway.get(spec.http.path, headers=_bearer(machine)).status_code
        assert as_machine == as_person, spec.name
    # Nowhere more: the machine's token is no person's token (another issuer and audience), a
    # copy with its claims moved to the people's issuer fails its signature, and it may not
    # manage keys even with the admin role.
    claims = jwt.decode(machine, options={"verify_signature": False})
    assert claims["iss"] != jwt.decode(person, options={"verify_signature": False})["iss"]
    forged = jwt.encode(
        {**claims, "iss": "https://dev-issuer.promptopt.local"},
        "not-the-key-" * 4,
        algorithm="HS256",
        headers={"kid": jwt.get_unverified_header(machine)["kid"]},
    )
    assert gateway.get("/api/v1/me", headers=_bearer(forged)).status_code == 401
    admin_machine = _exchange(gateway, _new_key(gateway, admin, "admin")["secret"]).json()["token"]
    r = gateway.post("/api/v1/api-keys", json={"name": "x", "role": "viewer"}, headers=_bearer(admin_machine))
    assert (r.status_code, r.json()["code"]) == (403, "person_required")


def _cli(stack: Stack, cache: Path, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMPTOPT_TOKEN"}
    env.update(
        {
            "PROMPTOPT_API_URL": stack.gateway_url,
            "PROMPTOPT_API_KEY": key,
            "PROMPTOPT_TOKEN_CACHE_DIR": str(cache),
        }
    )
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_ci_runs_an_experiment_with_only_an_api_key(
    stack: Stack, gateway: httpx.Client, token_for: Callable[..., str], tmp_path: Path
) -> None:
    admin = token_for("keys-e2e-ci", "admin", subject="owner")
    key = _new_key(gateway, admin, "editor")["secret"]
    cache = tmp_path / "tokens"

    whoami = _cli(stack, cache, key, "--json", "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["credential"] == "api_key"
    (cached,) = list(cache.glob("*.json"))
    token = json.loads(cached.read_text())["token"]
    assert key not in cached.read_text()
    assert oct(cached.stat().st_mode & 0o777) == "0o600"

    prompt = _cli(
        stack, cache, key, "--json", "prompts", "create", "--output-prompt", "Evaluate: {input}\nA:"
    )
    assert prompt.returncode == 0, prompt.stderr
    assert json.loads(cached.read_text())["token"] == token  # the cached token was reused
    dataset = _cli(
        stack, cache, key, "--json", "datasets", "create", "--bundled", "bbh/boolean_expressions", "--wait"
    )
    assert dataset.returncode == 0, dataset.stderr

    headers = _bearer(token)
    body = {
        "name": "nightly",
        "prompt": {"prompt_id": json.loads(prompt.stdout)["prompt_id"]},
        "dataset": {"dataset_id": json.loads(dataset.stdout)["dataset"]["dataset_id"]},
        "metric": {"name": "exact_match"},
        "optimizer": {"max_iterations": 1, "candidates_per_iteration": 2, "minibatch_size": 4,
                      "validation_size": 10, "test_size": 10},
    }  # fmt: skip
    experiment = gateway.post("/api/v1/experiments", json=body, headers=headers)
    assert experiment.status_code == 201, experiment.text
    eid = experiment.json()["experiment_id"]
    started = gateway.post(f"/api/v1/experiments/{eid}/start", headers=headers)
    assert started.status_code == 202, started.text
    run = started.json()
    deadline = time.monotonic() + 180
    while run["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(2)
        run = gateway.get(f"/api/v1/experiments/{eid}/runs/{run['run_id']}", headers=headers).json()
    assert run["status"] == "completed", run


def test_readiness_reports_each_backing_service(gateway: httpx.Client, token_for: Callable[..., str]) -> None:
    admin = token_for("ready-e2e", "admin")
    r = gateway.get("/api/v1/health/ready", headers=_bearer(admin))
    assert r.status_code == 200, r.text
    checks = {c["service"]: c for c in r.json()["checks"]}
    assert set(checks) == {"firestore", "pubsub", "storage", "tasks", "secret_manager"}
    for name in ("firestore", "pubsub", "storage", "tasks"):
        assert checks[name]["status"] == "ok", checks[name]
        assert checks[name]["latency_ms"] >= 0
    assert checks["secret_manager"]["status"] in ("ok", "skipped")  # no emulator: the local stand-in
    viewer = token_for("ready-e2e", "viewer")
    assert gateway.get("/api/v1/health/ready", headers=_bearer(viewer)).status_code == 403
    assert gateway.get("/api/v1/health").status_code == 200  # liveness stays public and cheap
