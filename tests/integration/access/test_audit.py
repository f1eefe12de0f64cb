"""The audit log: every write route of the manifest leaves an entry, read back by admins only.

`test_every_write_route_is_audited` walks the manifest: a route that writes (any method but GET,
unless its manifest says `audit: false` for a computation listed in NOT_WRITES) must appear in the
scenario below and, called for real, leave an entry naming who, what, which id and the credential.
A new write route fails this test until the scenario exercises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from promptopt import config
from promptopt.access import audit, keys
from promptopt.manifest import load_manifest
from tests.conftest import Api
from tests.integration.access.conftest import forwarded
from tests.integration.experiments.conftest import ROOT, Experiments, experiments, ingest  # noqa: F401
from tests.integration.experiments.runs_support import RunInfra, configure, make_infra
from tests.support import claims_header

pytestmark = pytest.mark.integration

# POSTs that change nothing: each is a computation or an exchange, with the reason.
NOT_WRITES = {
    "evaluation_score": "scores predictions and stores nothing",
    "experiments_estimate": "a dry run that stores nothing",
    "inference_complete": "one model call; counted in usage, it creates nothing",
    "auth_token": "a token exchange; failures are logged, keys' last use recorded on the key",
}
ADMIN = "audit-admin"


@pytest.fixture(scope="module")
def run_infra(emulator_env: dict[str, str]) -> RunInfra:
    return make_infra()


@pytest.fixture
def world(
    experiments: Experiments,  # noqa: F811
    run_infra: RunInfra,
    access_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Experiments]:
    configure(run_infra, monkeypatch)
    config.reset()
    yield experiments
    config.reset()


def _scenario(api: Api, tenant: str, make_key: Callable[..., dict[str, Any]], w: Experiments) -> set[str]:
    """Call every write route once, successfully, as admin `ADMIN`; the routes called."""
    done: set[str] = set()
    who = claims_header(tenant, "admin", ADMIN)

    def call(name: str, method: str, path: str, expect: int, **kw: Any) -> Any:
        headers = {**who, **kw.pop("headers", {})}
        r = api.call(name, method, path, headers=headers, **kw)
        assert r.status_code == expect, (name, r.status_code, r.get_data(as_text=True)[:300])
        done.add(name)
        return r.get_json(silent=True)

    pid = call("prompts_create", "POST", "/api/v1/prompts", 201, json={"output_prompt": "Q: {input}"})[
        "prompt_id"
    ]
    call(
        "prompts_update",
        "PUT",
        f"/api/v1/prompts/{pid}",
        200,
        json={"system_prompt": "x"},
        headers={"If-Match": '"v1"'},
    )
    call("prompts_label_set", "PUT", f"/api/v1/prompts/{pid}/labels/prod", 200, json={"version": 2})
    call("prompts_label_delete", "DELETE", f"/api/v1/prompts/{pid}/labels/prod", 200)
    call("prompts_patch", "PATCH", f"/api/v1/prompts/{pid}", 200, json={"name": "renamed"},
         headers={"If-Match": '"v2"'})  # fmt: skip
    call("prompts_archive", "POST", f"/api/v1/prompts/{pid}/archive", 200)
    call("prompts_unarchive", "POST", f"/api/v1/prompts/{pid}/unarchive", 200)
    call("prompts_delete", "DELETE", f"/api/v1/prompts/{pid}", 204)
    done.add("datasets_create")  # made by the `experiments` fixture, as this tenant
    call(
        "datasets_version_create",
        "POST",
        f"/api/v1/datasets/{w.dataset_id}/versions",
        201,
        json={"content": "input,target\na,b\n"},
    )
    rows = [{"inputs": {"input": "x"}, "reference": "x"}]
    job = call(
        "batch_create",
        "POST",
        "/api/v1/inference/batch",
        202,
        json={"output_prompt": "{input}", "rows": rows},
    )
    call("batch_evaluation_create", "POST", "/api/v1/inference/evaluate", 202,
         json={"output_prompt": "{input}", "rows": rows, "metrics": [{"name": "exact_match"}]})  # fmt: skip
    call("batch_cancel", "POST", f"/api/v1/inference/batch/{job['job_id']}/cancel", 200)
    body = {
        **w.body(),
        "optimizer": {"max_iterations": 1, "candidates_per_iteration": 2, "minibatch_size": 4},
    }
    eid = call("experiments_create", "POST", ROOT, 201, json=body)["experiment_id"]
    call("experiments_update", "PATCH", f"{ROOT}/{eid}", 200, json={"description": "nightly"})
    run = call("experiments_start", "POST", f"{ROOT}/{eid}/start", 202)
    call("experiments_run_cancel", "POST", f"{ROOT}/{eid}/runs/{run['run_id']}/cancel", 200)
    call("experiments_delete", "DELETE", f"{ROOT}/{eid}", 204)
    call("datasets_delete", "DELETE", f"/api/v1/datasets/{w.dataset_id}", 204)
    key = call("api_keys_create", "POST", "/api/v1/api-keys", 201, json={"name": "ci", "role": "viewer"})
    call("api_keys_revoke", "DELETE", f"/api/v1/api-keys/{key['key_id']}", 204)
    call("members_set", "PUT", "/api/v1/members/helper", 200, json={"role": "editor"})
    call("members_remove", "DELETE", "/api/v1/members/helper", 204)
    call("spending_cap_set", "PUT", "/api/v1/spending-cap", 200, json={"monthly_cap_usd": 50.0})
    return done


def test_every_write_route_is_audited(
    api: Api, world: Experiments, make_key: Callable[..., dict[str, Any]]
) -> None:
    tenant = world.tenant
    writes = {s.name for s in load_manifest() if s.is_http and s.http.method != "GET"}
    unaudited = {
        s.name for s in load_manifest() if s.is_http and s.http.method != "GET" and not s.http.audited
    }
    assert unaudited == set(NOT_WRITES), "a POST marked audit: false must say why in NOT_WRITES"
    called = _scenario(api, tenant, make_key, world)
    missing = writes - set(NOT_WRITES) - called
    assert not missing, f"write routes the scenario does not exercise (add them): {sorted(missing)}"

    entries = _all(api, tenant)
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_action.setdefault(entry["action"], []).append(entry)
    assert set(by_action) >= called
    assert not set(by_action) & set(NOT_WRITES)
    for name in called - {"datasets_create"}:
        (entry,) = [e for e in by_action[name] if e["actor"] == ADMIN]
        assert entry["actor"] == ADMIN, name
        assert entry["credential"] == "user", name
        assert entry["role"] == "admin", name
        assert entry["resource_id"], name
        assert 200 <= entry["status"] < 300, name
    assert by_action["members_set"][0]["resource_id"] == "helper"
    created = [e for e in by_action["prompts_create"] if e["actor"] == ADMIN]
    assert created[0]["resource_id"] == by_action["prompts_update"][0]["resource_id"]
    for name in ("prompts_patch", "prompts_archive", "prompts_unarchive", "prompts_delete"):
        assert by_action[name][0]["resource_id"] == created[0]["resource_id"], name


def _all(api: Api, tenant: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        query = {**params, "page_size": "7", **({"page_token": token} if token else {})}
        page = api.call("audit_list", "GET", "/api/v1/audit", tenant=tenant, query_string=query).get_json()
        items += page["items"]
        token = page.get("next_page_token")
        if not token:
            return items


def test_entries_record_the_credential_and_filter(
    api: Api, tenant: str, make_key: Callable[..., dict[str, Any]], exchange: Callable[..., Any]
) -> None:
    token = exchange(make_key(tenant, "editor", subject="boss")["secret"]).get_json()["token"]
    made = api.call(
        "prompts_create",
        "POST",
        "/api/v1/prompts",
        headers=forwarded(token),
        json={"output_prompt": "{input}"},
    )
    assert made.status_code == 201
    replayed_key = {"Idempotency-Key": "same"}
    for _ in range(2):
        api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant, headers=replayed_key,
                 json={"output_prompt": "{input} again"})  # fmt: skip
    by_key = _all(api, tenant, action="prompts_create")
    machine = [e for e in by_key if e["credential"] == "api_key"]
    assert len(machine) == 1
    assert machine[0]["key_id"]
    assert machine[0]["actor"].startswith("apikey:")
    assert machine[0]["resource_id"] == made.get_json()["prompt_id"]
    assert len(by_key) == 2  # the replayed answer wrote nothing and records nothing
    assert [e["action"] for e in _all(api, tenant, actor="boss")] == ["api_keys_create"]
    one = _all(api, tenant, resource_id=made.get_json()["prompt_id"])
    assert [e["credential"] for e in one] == ["api_key"]
    newest = _all(api, tenant)
    assert [e["at"] for e in newest] == sorted((e["at"] for e in newest), reverse=True)
    since = _all(api, tenant, since=machine[0]["at"])
    assert machine[0]["entry_id"] in {e["entry_id"] for e in since}
    two = api.call(
        "audit_list", "GET", "/api/v1/audit", tenant=tenant, query_string={"action": "a", "actor": "b"}
    )
    assert two.get_json()["code"] == "too_many_filters"
    assert api.call("audit_list", "GET", "/api/v1/audit", tenant=tenant, role="editor").status_code == 403
    assert _all(api, "t-" + "0" * 12) == []


def test_entries_expire_after_the_retention(tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from promptopt.access import paths
    from promptopt.auth import Principal, Role

    monkeypatch.setenv("PROMPTOPT_AUDIT_RETENTION_DAYS", "30")
    config.reset()
    who = Principal(subject="s", tenant=tenant, role=Role.admin)
    audit.record(principal=who, action="x", method="POST", path="/p", status=201, resource="r", trace=None)
    (entry,) = [s.to_dict() for s in paths.audit(tenant).stream()]
    assert entry["expires_at"] - entry["at"] == timedelta(days=30)
    assert entry["at"] <= datetime.now(UTC)
    keys.forget()
    config.reset()
