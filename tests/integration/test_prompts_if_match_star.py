"""`If-Match: *` ("whatever is current") is conditional too: of writers that read the same version,
exactly one wins and the others get 412 with the current ETag, as with a concrete ETag.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from promptopt.prompts import service
from tests.conftest import Api
from tests.support import claims_header

pytestmark = pytest.mark.integration

WRITERS = 10
BODY = {"name": "qa", "system_prompt": "Answer briefly.", "output_prompt": "Q: {input}\nA:"}


@pytest.mark.parametrize("trial", range(3))
def test_concurrent_star_writers_based_on_one_read_have_exactly_one_winner(
    api: Api, tenant: str, monkeypatch: pytest.MonkeyPatch, trial: int
) -> None:
    pid = api.call("prompts_create", "POST", "/api/v1/prompts", tenant=tenant, json=BODY).get_json()[
        "prompt_id"
    ]
    # Every writer reads the head, then waits until all have read it: the widest possible race.
    read_all = threading.Barrier(WRITERS, timeout=30)
    real_head = service._head

    def head_then_wait(principal: Any, prompt_id: str) -> Any:
        snapshot = real_head(principal, prompt_id)
        read_all.wait()
        return snapshot

    monkeypatch.setattr(service, "_head", head_then_wait)
    app = api.client("prompts_update").application
    answers: list[Any] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        response = app.test_client().put(
            f"/api/v1/prompts/{pid}",
            json={"system_prompt": f"writer {i} of trial {trial}"},
            headers={"If-Match": "*", **claims_header(tenant, "editor")},
        )
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [412] * (WRITERS - 1)
    for lost in (r for r in answers if r.status_code == 412):
        problem = lost.get_json()
        assert (problem["code"], problem["extra"]["current_etag"]) == ("version_mismatch", '"v2"')
    monkeypatch.undo()
    versions = api.call(
        "prompts_versions", "GET", f"/api/v1/prompts/{pid}/versions", tenant=tenant
    ).get_json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
