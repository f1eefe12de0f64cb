"""Fewer round trips around a chunk's calls, and the same records.

Before: a chunk task names its rows, so its first delivery reads the job, its rows and their
results at once. Tasks without rows (enqueued before they carried them) and tasks whose rows the
job does not have are run the way they always were. A retry reads its rows ahead and its done rows
apart, their summaries only: test_batch_reliability's crash test resumes that way.

After: a one-chunk job's last results, and its fresh answers for the cache, are created in the
commit that completes it. When a concurrent delivery wrote some of those rows first, its rows are
kept and the job still ends right. The job comes back from that move exactly as stored, so scoring
it right away does not read it again. A run's job is written running, so the chunk's read of it is
still current when the chunk completes it. A run's job names its chunks' cache keys in their tasks,
so each chunk reads its cache entries with the job instead of after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from promptopt.auth import Principal, Role
from promptopt.batch import cache, completion, jobs, paths, row_calls, runner, source, state
from promptopt.batch import chunks as chunk_tasks
from promptopt.batch.models import BatchCreate
from promptopt.batch.state import now
from tests.fakes.batch_faults import FaultyOpenAI
from tests.integration.batch.conftest import Batch

pytestmark = pytest.mark.integration

PROMPT = {"system_prompt": "Answer briefly.", "output_prompt": "Q: {question}", "model": "openai:gpt-test"}


def rows(n: int) -> list[dict[str, Any]]:
    return [{"inputs": {"question": f"row {i}"}, "reference": "42"} for i in range(n)]


@pytest.fixture
def openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyOpenAI]:
    with FaultyOpenAI(reply="42", input_tokens=10, output_tokens=2) as server:
        monkeypatch.setenv("PROMPTOPT_OPENAI_BASE_URL", server.base_url)
        yield server


def body(task: Any) -> dict[str, Any]:
    return json.loads(task.http_request.body)


def cached(tenant: str) -> int:
    """How many answers the tenant's cache holds."""
    return sum(1 for _ in paths.cache_ref(tenant, "any").parent.stream())


def not_stored_apart(*_args: Any, **_kw: Any) -> None:
    raise AssertionError("the answers were stored apart from the completing commit")


def test_a_delivery_that_names_its_rows_reads_nothing_else_before_its_calls(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started({**PROMPT, "rows": rows(10), "chunk_size": 10})

    def not_read(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("read again: the task named its rows")

    monkeypatch.setattr(runner, "read_done", not_read)
    monkeypatch.setattr(source, "chunk_rows", not_read)
    batch.run(job["job_id"])
    done = batch.get(job["job_id"])
    assert (done["status"], done["progress"]["succeeded"], openai.count) == ("completed", 10, 10)


def test_tasks_without_rows_or_with_rows_of_another_chunk_still_run_their_own(
    batch: Batch, openai: FaultyOpenAI
) -> None:
    job = batch.started({**PROMPT, "rows": rows(21), "chunk_size": 7})
    first, second, third = sorted(batch.infra.tasks(job["job_id"]), key=lambda t: body(t)["chunk"])
    old = {k: v for k, v in body(first).items() if k != "rows"}  # as tasks were before they named rows
    assert batch.deliver(first, body=json.dumps(old).encode()).status_code == 200
    wrong = {**body(second), "rows": [0, 7]}  # chunk 1 naming chunk 0's rows (done already)
    assert batch.deliver(second, body=json.dumps(wrong).encode()).status_code == 200
    huge = {**body(third), "rows": [0, 10**9]}  # no chunk holds that many: not even read ahead
    assert batch.deliver(third, body=json.dumps(huge).encode()).status_code == 200
    done = batch.get(job["job_id"])
    assert (done["status"], done["progress"]["succeeded"], openai.count) == ("completed", 21, 21)
    assert sorted(r["row"] for r in batch.results(job["job_id"])) == list(range(21))


def test_a_one_chunk_job_creates_its_results_in_the_commit_that_completes_it(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started({**PROMPT, "rows": rows(10), "chunk_size": 10})
    flush = runner.ResultWriter.flush

    def no_flush(writer: runner.ResultWriter) -> None:
        assert not writer.take(), "results written before the completing commit"
        flush(writer)

    monkeypatch.setattr(runner.ResultWriter, "flush", no_flush)
    monkeypatch.setattr(cache, "store", not_stored_apart)
    batch.run(job["job_id"])
    done = batch.get(job["job_id"])
    assert (done["status"], done["progress"]["succeeded"], openai.count) == ("completed", 10, 10)
    assert sorted(r["row"] for r in batch.results(job["job_id"])) == list(range(10))
    assert cached(batch.tenant) == 10  # the answers for the cache came with that commit


def test_answers_that_would_overfill_the_completing_commit_are_stored_apart(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started({**PROMPT, "rows": rows(10), "chunk_size": 10})
    monkeypatch.setattr(runner, "_MAX_WRITES", 11)  # 10 answers + the held results do not fit
    stored: list[int] = []
    store = cache.store

    def counted(tenant: str, model: str, answers: dict[str, Any], ttl_s: int) -> None:
        stored.append(len(answers))
        store(tenant, model, answers, ttl_s)

    monkeypatch.setattr(cache, "store", counted)
    batch.run(job["job_id"])
    assert batch.get(job["job_id"])["status"] == "completed"
    assert (stored, cached(batch.tenant)) == ([10], 10)


def test_a_runs_job_is_written_running_so_its_chunks_read_it_as_it_stays(
    batch: Batch, openai: FaultyOpenAI
) -> None:
    principal = Principal(subject="experiment:e1", tenant=batch.tenant, role=Role.editor)
    owner = {"experiment_id": "e1", "run_id": "r1", "candidate": "c000_00"}
    created = jobs.create_job(
        principal=principal, body=BatchCreate.model_validate({**PROMPT, "rows": rows(3)}), owner=owner
    )
    snapshot = paths.job_ref(batch.tenant, created["job_id"]).get()
    assert created["status"] == "running"
    assert (snapshot.get("status"), snapshot.update_time) == ("running", snapshot.create_time)  # one write
    batch.run(created["job_id"])
    done = batch.get(created["job_id"])
    assert (done["status"], done["progress"]["succeeded"]) == ("completed", 3)


def run_job(batch: Batch, n: int, **extra: Any) -> str:
    """A run's job (an owner named) over the first n rows; returns its id."""
    principal = Principal(subject="experiment:e1", tenant=batch.tenant, role=Role.editor)
    owner = {"experiment_id": "e1", "run_id": "r1", "candidate": "c000_00"}
    body = BatchCreate.model_validate({**PROMPT, "rows": rows(n), **extra})
    return str(jobs.create_job(principal=principal, body=body, owner=owner)["job_id"])


def not_looked_up(_tenant: str, keys: Any) -> dict[str, Any]:
    assert not list(keys), "the cache was looked up after the chunk's first read"
    return {}


def test_a_runs_job_names_its_cache_keys_so_its_chunks_look_nothing_up_apart(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = batch.started({**PROMPT, "rows": rows(3), "chunk_size": 10})  # answers rows 0-2 into the cache
    batch.run(first["job_id"])
    assert "cache" not in body(batch.infra.tasks(first["job_id"])[0])  # an API job's tasks name none
    job_id = run_job(batch, 7, chunk_size=4)
    tasks = sorted(batch.infra.tasks(job_id), key=lambda t: body(t)["chunk"])
    data = paths.job_ref(batch.tenant, job_id).get().to_dict() or {}
    expected = [
        row_calls.cache_keys(data, (r["inputs"] for r in rows(7)[start : start + 4])) for start in (0, 4)
    ]
    assert [body(t)["cache"] for t in tasks] == expected
    assert len(set(expected[0] + expected[1])) == 7
    monkeypatch.setattr(cache, "lookup", not_looked_up)
    batch.run(job_id)
    done = batch.get(job_id)
    assert (done["status"], done["progress"]["succeeded"], done["progress"]["cache_hits"]) == (
        "completed",
        7,
        3,
    )
    assert openai.count == 3 + 4  # the first job's calls, then only the rows not cached


def test_a_task_naming_other_cache_keys_still_finds_its_own_answers(
    batch: Batch, openai: FaultyOpenAI
) -> None:
    first = batch.started({**PROMPT, "rows": rows(3), "chunk_size": 10})
    batch.run(first["job_id"])
    job_id = run_job(batch, 3)
    (task,) = batch.infra.tasks(job_id)
    wrong = {**body(task), "cache": ["0" * 64, "f" * 64, "0" * 64]}  # keys of no call, one twice
    assert batch.deliver(task, body=json.dumps(wrong).encode()).status_code == 200
    done = batch.get(job_id)
    assert (done["status"], done["progress"]["cache_hits"], openai.count) == ("completed", 3, 3)


@pytest.mark.parametrize("keys", [["not-a-key"], ["A" * 64], "0" * 64, ["0" * 64] * 501])
def test_a_task_whose_cache_keys_are_malformed_is_refused(batch: Batch, keys: Any) -> None:
    job_id = run_job(batch, 2)
    (task,) = batch.infra.tasks(job_id)
    response = batch.deliver(task, body=json.dumps({**body(task), "cache": keys}).encode())
    assert response.status_code == 400, response.get_data(as_text=True)


def test_a_runs_job_without_the_cache_names_no_keys(batch: Batch, openai: FaultyOpenAI) -> None:
    job_id = run_job(batch, 2, cache=False)
    assert "cache" not in body(batch.infra.tasks(job_id)[0])
    batch.run(job_id)
    assert (batch.get(job_id)["status"], openai.count) == ("completed", 2)


def test_a_runs_job_whose_chunks_cannot_be_queued_fails_with_the_reason(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(**_kw: Any) -> None:
        raise RuntimeError("Cloud Tasks unavailable")

    monkeypatch.setattr(chunk_tasks, "enqueue", unavailable)
    principal = Principal(subject="experiment:e1", tenant=batch.tenant, role=Role.editor)
    owner = {"experiment_id": "e1", "run_id": "r1", "candidate": "c000_00"}
    job_id = jobs.new_job_id(batch.tenant, BatchCreate.model_validate({**PROMPT, "rows": rows(3)}), "k1")
    with pytest.raises(chunk_tasks.BatchNotConfigured):
        jobs.create_job(
            principal=principal,
            body=BatchCreate.model_validate({**PROMPT, "rows": rows(3)}),
            owner=owner,
            job_id=job_id,
        )
    failed = batch.get(job_id)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "enqueue_failed")


def test_rows_a_concurrent_delivery_wrote_first_are_kept_and_the_job_still_completes(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started({**PROMPT, "rows": rows(6), "chunk_size": 6})
    real = completion.finish_only_chunk
    theirs: list[int] = []

    def raced(tenant: str, job_ref: Any, totals: Any, **kw: Any) -> bool:
        held = kw.get("results")
        if held:  # another delivery of the chunk creates one of these rows just before this commit
            first = {**held[0], "output": "theirs", "created_at": now()}
            paths.results(job_ref).document(paths.row_id(first["row"])).create(first)
            theirs.append(first["row"])
        return real(tenant, job_ref, totals, **kw)

    monkeypatch.setattr(completion, "finish_only_chunk", raced)
    batch.run(job["job_id"])
    done = batch.get(job["job_id"])
    assert (done["status"], done["progress"]["succeeded"]) == ("completed", 6)
    found = {r["row"]: r["output"] for r in batch.results(job["job_id"])}
    assert sorted(found) == list(range(6))
    assert len(theirs) == 1
    assert found[theirs[0]] == "theirs"
    assert [found[r] for r in range(6) if r != theirs[0]] == ["42"] * 5
    assert cached(batch.tenant) == 6  # stored apart once the commit holding them was refused


def test_a_moved_job_comes_back_exactly_as_stored(batch: Batch, openai: FaultyOpenAI) -> None:
    job = batch.started({**PROMPT, "rows": rows(2)})
    ref = paths.job_ref(batch.tenant, job["job_id"])
    changed, known = state.move(ref, to="cancelled", fields={"stop_reason": "cancelled"})
    stored = ref.get()
    assert changed
    assert known is not None
    assert known.update_time == stored.update_time  # the precondition of the job's next write
    assert known.data == stored.to_dict()
    unchanged, again = state.move(ref, to="running")  # not allowed from cancelled: read, not written
    assert not unchanged
    assert again is not None
    assert (again.update_time, again.data) == (stored.update_time, stored.to_dict())


def test_rows_another_delivery_wrote_before_the_last_batch_are_counted_as_stored(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery that met rows written by another one sends its last results on their own, and the
    job's totals are read back from what is stored, not taken from this delivery's own answers."""
    job = batch.started({**PROMPT, "rows": rows(150), "chunk_size": 150})
    flush = runner.ResultWriter.flush
    theirs: list[int] = []

    def raced(writer: runner.ResultWriter) -> None:
        if not theirs and len(writer._buffer) >= 100:  # the first full batch: another delivery won a row
            first = {**writer._buffer[0], "input_tokens": 999, "created_at": now()}
            paths.results(writer.job).document(paths.row_id(first["row"])).create(first)
            theirs.append(first["row"])
        flush(writer)

    monkeypatch.setattr(runner.ResultWriter, "flush", raced)
    batch.run(job["job_id"])
    done = batch.get(job["job_id"])
    assert (done["status"], done["progress"]["succeeded"]) == ("completed", 150)
    assert done["usage"]["input_tokens"] == 149 * 10 + 999  # the stored row's figures, not this delivery's
    assert len(batch.results(job["job_id"])) == 150


def test_held_results_are_kept_when_the_completing_commit_fails_for_another_reason(
    batch: Batch, openai: FaultyOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = batch.started({**PROMPT, "rows": rows(6), "chunk_size": 6})
    (task,) = batch.infra.tasks(job["job_id"])
    real = completion.finish_only_chunk

    def unavailable(*args: Any, **kw: Any) -> bool:
        if kw.get("results"):
            raise RuntimeError("Firestore unavailable")
        return real(*args, **kw)

    monkeypatch.setattr(completion, "finish_only_chunk", unavailable)
    with pytest.raises(RuntimeError):
        runner.run_chunk(runner.Delivery(batch.tenant, job["job_id"], 0, rows=range(6)))
    assert sorted(r["row"] for r in batch.results(job["job_id"])) == list(range(6))  # paid for, kept
    assert cached(batch.tenant) == 6  # and so are the answers for the cache
    assert batch.deliver(task, retry=1).status_code == 200
    done = batch.get(job["job_id"])
    assert (done["status"], done["progress"]["succeeded"], openai.count) == ("completed", 6, 6)
