"""Prompt heads stored before the `archived` flag: listed again once the backfill gave them the flag."""

from __future__ import annotations

import uuid

import pytest

from promptopt.experiments import engine, tick
from promptopt.prompts import backfill
from promptopt.prompts.service import head_ref
from tests.conftest import Api

pytestmark = pytest.mark.integration

BODY = {"name": "old", "system_prompt": "Answer briefly.", "output_prompt": "Q: {input}\nA:"}
P = "/api/v1/prompts"


def _old_prompt(api: Api, tenant: str) -> str:
    """A prompt whose head looks like one an earlier deployment wrote: no `archived` field."""
    from google.cloud.firestore import DELETE_FIELD

    r = api.call("prompts_create", "POST", P, tenant=tenant, role="editor", json=BODY)
    assert r.status_code == 201, r.get_data(as_text=True)
    pid = str(r.get_json()["prompt_id"])
    head_ref(tenant, pid).update({"archived": DELETE_FIELD})
    return pid


def _listed(api: Api, tenant: str) -> list[str]:
    r = api.call("prompts_list", "GET", P, tenant=tenant, role="viewer")
    assert r.status_code == 200
    return [item["prompt_id"] for item in r.get_json()["items"]]


def test_a_prompt_without_the_flag_is_listed_after_the_backfill_and_a_second_run_changes_nothing(
    api: Api, tenant: str
) -> None:
    pid = _old_prompt(api, tenant)
    assert _listed(api, tenant) == []  # the listing's equality filter leaves it out

    name = f"test-{uuid.uuid4().hex}"
    first = backfill.run_once(name=name)
    assert first.done
    assert first.updated >= 1
    assert _listed(api, tenant) == [pid]
    head = head_ref(tenant, pid).get()
    assert head.get("archived") is False

    again = backfill.run_once(name=name)  # this deployment's marker says done: nothing is read
    assert (again.done, again.scanned, again.updated) == (True, 0, 0)
    by_hand = backfill.walk()  # a walk from the start finds nothing left to write
    assert by_hand.done
    assert by_hand.updated == 0
    assert head_ref(tenant, pid).get().update_time == head.update_time
    assert backfill.marker_ref(name).get().get("done") is True


def test_a_bounded_slice_carries_on_from_its_marker(api: Api, tenant: str) -> None:
    pids = {_old_prompt(api, tenant) for _ in range(5)}
    name = f"test-{uuid.uuid4().hex}"
    first = backfill.run_once(name=name, limit=2, page=1)
    assert (first.scanned, first.done) == (2, False)
    second = backfill.run_once(name=name, limit=2, page=1)  # resumes after the first slice's last head
    assert second.scanned == 2
    assert second.cursor not in (None, first.cursor)
    rest = backfill.run_once(name=name, limit=1_000_000)
    assert rest.done
    marker = backfill.marker_ref(name).get().to_dict() or {}
    assert marker["scanned"] == first.scanned + second.scanned + rest.scanned
    assert set(_listed(api, tenant)) == pids


def test_an_archive_landing_between_read_and_write_is_kept(api: Api, tenant: str) -> None:
    pid = _old_prompt(api, tenant)
    stale = head_ref(tenant, pid).get(field_paths=["archived"])
    head_ref(tenant, pid).update({"archived": True})
    assert backfill._flag_missing([stale]) == 0
    assert head_ref(tenant, pid).get().get("archived") is True


def test_the_schedule_tick_runs_the_backfill(api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_REVISION", f"test-{uuid.uuid4().hex}")
    pid = _old_prompt(api, tenant)
    report = tick.run_tick(engine.now())
    assert "prompt heads flagged" in report
    assert _listed(api, tenant) == [pid]
