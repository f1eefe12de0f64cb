"""Chunk planning, task naming, queue and URL resolution, tunables and message decoding."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from promptopt import config
from promptopt.batch import chunks, events
from promptopt.batch.options import BatchOptions, options


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "PROMPTOPT_QUEUES",
        "PROMPTOPT_FUNCTION_URLS",
        "PROMPTOPT_FUNCTIONS_BASE_URL",
        "PROMPTOPT_TOPICS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    config.reset()
    yield
    config.reset()


@pytest.mark.parametrize(("rows", "size", "expected"), [(1, 50, 1), (50, 50, 1), (51, 50, 2), (1000, 7, 143)])
def test_plan_covers_every_row_once(rows: int, size: int, expected: int) -> None:
    n = chunks.plan(rows, size)
    assert n == expected
    covered = [r for c in range(n) for r in chunks.chunk_bounds(c, size, rows)]
    assert covered == list(range(rows))


def test_task_names_are_deterministic_and_valid() -> None:
    name = chunks.task_id("bj_0123456789abcdef0123", 7, 0)
    assert name.endswith("-bj_0123456789abcdef0123-00007-0")
    assert name[:6] != chunks.task_id("bj_0123456789abcdef0123", 8, 0)[:6]  # a spread-out prefix
    assert name == chunks.task_id("bj_0123456789abcdef0123", 7, 0)
    assert name != chunks.task_id("bj_0123456789abcdef0123", 7, 1)
    assert all(c.isalnum() or c in "-_" for c in name)


def test_queue_per_model_family_falls_back_to_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    assert chunks.queue_for("gemini") == "projects/p1/locations/us-central1/queues/inference"
    queues = {"inference": "projects/p1/locations/eu/queues/dev-inference", "inference-gemini": "dev-gemini"}
    monkeypatch.setenv("PROMPTOPT_QUEUES", json.dumps(queues))
    config.reset()
    assert chunks.queue_for("openai") == "projects/p1/locations/eu/queues/dev-inference"
    assert chunks.queue_for("gemini") == "projects/p1/locations/us-central1/queues/dev-gemini"


def test_chunk_function_url_explicit_or_derived(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(chunks.BatchNotConfigured):
        chunks.chunk_function_url()
    monkeypatch.setenv("PROMPTOPT_FUNCTIONS_BASE_URL", "https://us-central1-p1.cloudfunctions.net/")
    monkeypatch.setenv("PROMPTOPT_FUNCTION_PREFIX", "dev-")
    config.reset()
    assert chunks.chunk_function_url() == "https://us-central1-p1.cloudfunctions.net/dev-batch-chunk"
    monkeypatch.setenv("PROMPTOPT_FUNCTION_URLS", json.dumps({"batch_chunk": "http://127.0.0.1:8091"}))
    config.reset()
    assert chunks.chunk_function_url() == "http://127.0.0.1:8091"


def test_a_task_carries_only_ids_and_an_oidc_token_when_an_account_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = chunks._task("q", "https://f", chunks.ChunkTask("t1", "bj_x", 3), 0, 600)
    assert json.loads(task.body) == {"tenant": "t1", "job_id": "bj_x", "chunk": 3}
    assert (task.url, task.oidc_account, task.deadline_s) == ("https://f", None, 600)
    assert task.name == "q/tasks/" + chunks.task_id("bj_x", 3, 0)
    monkeypatch.setenv("PROMPTOPT_TASKS_SERVICE_ACCOUNT", "tasks@p1.iam.gserviceaccount.com")
    config.reset()
    task = chunks._task("q", "https://f", chunks.ChunkTask("t1", "bj_x", 3), 0, 600)
    assert task.oidc_account == "tasks@p1.iam.gserviceaccount.com"  # audience: the url (tasks_grpc)


def test_options_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert options() == BatchOptions()
    monkeypatch.setenv("PROMPTOPT_BATCH_CHUNK_SIZE", "20")
    monkeypatch.setenv("PROMPTOPT_BATCH_CALL_TIMEOUT_S", "2.5")
    assert (options().chunk_size, options().call_timeout_s) == (20, 2.5)
    monkeypatch.setenv("PROMPTOPT_BATCH_MAX_ATTEMPTS", "lots")
    with pytest.raises(ValueError, match="PROMPTOPT_BATCH_MAX_ATTEMPTS"):
        options()
    monkeypatch.setenv("PROMPTOPT_BATCH_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="positive"):
        options()


def test_topics_and_push_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    assert events.topic_path("batch-completed") is None
    assert events.publish("batch-completed", {"job_id": "x"}) is None  # not configured: nothing sent
    monkeypatch.setenv("PROMPTOPT_TOPICS", json.dumps({"batch-completed": "dev-batch-completed"}))
    config.reset()
    assert events.topic_path("batch-completed") == "projects/p1/topics/dev-batch-completed"
    data = {"message": {"data": base64.b64encode(b'{"job_id": "bj_1"}').decode()}}
    assert events.decode_push(data) == {"job_id": "bj_1"}
    for bad in ({}, {"message": {}}, {"message": {"data": base64.b64encode(b"[1]").decode()}}, None):
        with pytest.raises(ValueError, match=r"message|JSON object"):
            events.decode_push(bad)


def test_the_chunk_function_knows_the_inference_queue_max_attempts() -> None:
    """The last attempt writes terminal records, so it must be the queue's real last attempt."""
    import hcl2

    from promptopt.manifest import load_function_spec, repo_root
    from tests.infra.infra_hcl import unquote

    with (repo_root() / "terraform" / "variables.tf").open() as handle:
        variables = unquote({k: v for block in hcl2.load(handle)["variable"] for k, v in block.items()})
    queue = variables["queues"]["default"]["inference"]
    spec = load_function_spec(repo_root() / "functions" / "batch_chunk")
    assert int(spec.env["PROMPTOPT_BATCH_MAX_ATTEMPTS"]) == int(queue["max_attempts"])


def test_a_job_without_model_graded_metrics_loads_no_grading_code() -> None:
    """Creating a plain or deterministic-metric job leaves batch.judging and the model-backed
    metrics unloaded (cold start); a judged metric still loads them and has its model pinned."""
    code = (
        "import sys\n"
        "from types import SimpleNamespace as M\n"
        "from promptopt.batch import admission, jobs\n"
        "plain = [M(name='exact_match', params={}), M(name='regex', params={'pattern': 'a+'})]\n"
        "admission._check_params(plain)\n"
        "print(jobs._metric_specs(plain) == [{'name': m.name, 'params': m.params} for m in plain])\n"
        "graders = ('promptopt.batch.judging', 'promptopt.evaluation.judge',"
        " 'promptopt.evaluation.embedding')\n"
        "print(any(name in sys.modules for name in graders))\n"
        "print(jobs._metric_specs([M(name='llm_judge', params={})])[0]['params']['model'])\n"
        "print('promptopt.batch.judging' in sys.modules)\n"
    )
    env = {**os.environ, "PROMPTOPT_DEFAULT_MODEL": "sim:default"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["True", "False", "sim:default", "True"]
