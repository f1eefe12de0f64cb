"""`promptopt.Client` on the real function apps: every resource, pagination, typed errors, retries."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from promptopt.batch.models import BatchJob
from promptopt.batch.read_models import BatchResultRow, JobScores
from promptopt.client import (
    ApiKey,
    AuthenticationFailed,
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TransportError,
    Unprocessable,
    VersionConflict,
)
from promptopt.client import datasets as client_datasets
from promptopt.datasets.models import DatasetCreated
from promptopt.prompts.models import PromptSummary, PromptVersion
from tests.integration.cli.conftest import API_URL, Fault, LocalCloud
from tests.integration.client.conftest import KeyExchange

pytestmark = pytest.mark.integration

ROWS = [{"q": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(12)]


def test_prompts_typed_end_to_end(client: Client) -> None:
    created = client.prompts.create(name="qa", output_prompt="Q: {q}", metadata={"team": "ml"})
    assert isinstance(created, PromptVersion)
    assert (created.version, created.variables, created.metadata) == (1, ["q"], {"team": "ml"})

    second = client.prompts.update(created.prompt_id, base_version=1, system_prompt="Be brief.", message="m")
    assert (second.version, second.parent_id, second.output_prompt) == (2, f"{created.prompt_id}@1", "Q: {q}")
    with pytest.raises(VersionConflict) as stale:
        client.prompts.update(created.prompt_id, base_version=1, system_prompt="Older base.")
    assert stale.value.status == 412
    third = client.prompts.update(created.prompt_id, output_prompt="Question: {q}")  # If-Match: *
    assert third.version == 3

    labels = client.prompts.set_label(created.prompt_id, "production", version=2)
    assert labels.labels == {"production": 2}
    assert client.prompts.get(created.prompt_id, label="production").version == 2
    assert client.prompts.get(created.prompt_id, version=1).system_prompt == ""
    assert [v.version for v in client.prompts.iterate_versions(created.prompt_id, page_size=2)] == [3, 2, 1]
    assert client.prompts.remove_label(created.prompt_id, "production").labels == {}


def test_prompts_edit_sort_archive_and_delete(client: Client) -> None:
    kept = client.prompts.create(name="kept", output_prompt="{input}")
    other = client.prompts.create(name="other", output_prompt="{input}")
    renamed = client.prompts.edit(other.prompt_id, name="a-first", tags=["nightly"], base_version=1)
    assert (renamed.name, renamed.tags, renamed.version) == ("a-first", ["nightly"], 1)
    assert [p.name for p in client.prompts.iterate(sort="name")] == ["a-first", "kept"]
    assert [p.name for p in client.prompts.iterate(sort="-name")] == ["kept", "a-first"]
    client.prompts.set_label(kept.prompt_id, "production", version=1)
    with pytest.raises(Conflict) as used:
        client.prompts.delete(kept.prompt_id)
    assert used.value.status == 409
    assert client.prompts.archive(other.prompt_id).archived is True
    assert [p.prompt_id for p in client.prompts.iterate()] == [kept.prompt_id]
    assert len(list(client.prompts.iterate(include_archived=True))) == 2
    assert client.prompts.unarchive(other.prompt_id).archived is False
    client.prompts.delete(other.prompt_id)
    with pytest.raises(NotFound):
        client.prompts.get(other.prompt_id)


def test_lists_iterate_across_pages(client: Client, cloud: LocalCloud) -> None:
    made = {client.prompts.create(name="paged", output_prompt="{input}").prompt_id for _ in range(5)}
    page = client.prompts.list(name="paged", page_size=2)
    assert len(page.items) == 2
    assert page.next_page_token
    everything = list(client.prompts.iterate(name="paged", page_size=2))
    assert all(isinstance(p, PromptSummary) for p in everything)
    assert {p.prompt_id for p in everything} == made
    gets = [r for r in cloud.sent("GET") if r.path == "/api/v1/prompts"]
    assert len(gets) >= 1 + 3  # one page above, then three pages of 2, 2 and 1


def test_datasets_from_rows_and_from_a_file(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud
) -> None:
    created = client.datasets.create(ROWS, name="sums", inputs=["q"], reference="answer", wait=True)
    assert isinstance(created, DatasetCreated)
    assert created.upload is None  # small: sent inline
    assert created.version.status == "ready"
    assert created.version.rows_ok == len(ROWS)
    dataset_id = created.dataset.dataset_id
    rows = list(client.datasets.iterate_rows(dataset_id, page_size=5))
    assert sorted(r.inputs["q"] for r in rows) == sorted(r["q"] for r in ROWS)
    assert len(client.datasets.sample(dataset_id, n=3, seed=1).rows) == 3

    # A file larger than the inline limit goes through the signed URL, with upload progress.
    monkeypatch.setattr(client_datasets, "INLINE_MAX_BYTES", 10)
    path = tmp_path / "more.jsonl"  # a version is in the dataset's format
    lines = [json.dumps({"q": f"what is {i}", "answer": str(i)}) + "\n" for i in range(30)]
    path.write_text("".join(lines), encoding="utf-8")
    sent: list[tuple[int, int]] = []
    version = client.datasets.upload(
        dataset_id, path, wait=True, on_upload=lambda done, total: sent.append((done, total))
    )
    assert version.upload is not None
    assert len(cloud.storage_puts()) == 1
    assert sent[-1] == (path.stat().st_size, path.stat().st_size)
    assert (version.version.version, version.version.status, version.version.rows_ok) == (2, "ready", 30)
    assert [d.dataset_id for d in client.datasets.iterate(name="sums")] == [dataset_id]

    client.datasets.delete(dataset_id)
    with pytest.raises(NotFound) as gone:
        client.datasets.get(dataset_id)
    assert gone.value.code == "dataset_not_found"


def test_batch_and_evaluation_jobs(client: Client) -> None:
    inline = [{"inputs": {"q": r["q"]}, "reference": r["answer"]} for r in ROWS]
    seen: list[str] = []
    job = client.batch.evaluate(
        output_prompt="Q: {q}\nAnswer with the number only.",
        rows=inline,
        model="sim:default",
        metrics=["exact_match", {"name": "numeric", "params": {"tolerance": 0.5}}],
        chunk_size=5,
    )
    assert isinstance(job, BatchJob)
    assert job.kind == "evaluation"
    done = client.batch.wait(job.job_id, on_progress=lambda j: seen.append(j.status))
    assert done.status == "completed"
    assert seen[-1] == "completed"
    assert len(seen) > 1  # progress came while it ran
    assert done.evaluation is not None
    assert {m.name for m in done.evaluation.metrics} == {"exact_match", "numeric"}

    results = list(client.batch.iterate_results(job.job_id, page_size=5))
    assert all(isinstance(r, BatchResultRow) for r in results)
    assert [r.row for r in results] == list(range(len(ROWS)))

    scores = client.batch.scores(job.job_id)
    assert isinstance(scores, JobScores)
    numeric = next(m for m in scores.metrics if m.name == "numeric")
    assert numeric.params == {"tolerance": 0.5}
    assert numeric.rows == list(range(len(ROWS)))
    mean = sum(v or 0.0 for v in numeric.values) / len(ROWS)
    summary = next(m for m in done.evaluation.metrics if m.name == "numeric")
    assert mean == pytest.approx(summary.mean)

    plain = client.batch.run(output_prompt="Q: {q}", rows=inline[:3], model="sim:default")
    assert plain.kind == "batch"
    with pytest.raises(Conflict) as not_scored:
        client.batch.scores(plain.job_id)
    assert not_scored.value.code == "not_an_evaluation"
    client.batch.wait(plain.job_id)
    with pytest.raises(Conflict):
        client.batch.cancel(plain.job_id)  # a finished job cannot be cancelled


def test_complete_evaluate_and_health(client: Client) -> None:
    assert client.health().status == "ok"
    answer = client.complete(output_prompt="Q: {input}", user_input="2+2?", model="sim:default")
    assert answer.simulated
    assert answer.text
    scored = client.evaluate(["4", "five"], ["4", "5"], metrics=["exact_match"])
    assert scored.metrics[0].mean == 0.5
    assert scored.rows is not None
    assert [r.scores["exact_match"] for r in scored.rows] == [1.0, 0.0]


def test_experiments(client: Client) -> None:
    rows = [{"input": f"{b}" + " and True" * i, "target": str(b)} for i in range(15) for b in (True, False)]
    dataset = client.datasets.create(rows, name="bools", inputs=["input"], reference="target", wait=True)
    prompt = client.prompts.create(output_prompt="{input}\nAnswer with True or False.")
    settings = {
        "name": "bools",
        "prompt": {"prompt_id": prompt.prompt_id},
        "dataset": {"dataset_id": dataset.dataset.dataset_id},
        "metric": {"name": "exact_match"},
        "optimizer": {"max_iterations": 1, "candidates_per_iteration": 2, "minibatch_size": 2},
    }
    estimate = client.experiments.estimate(**settings)
    assert estimate.task_calls > 0
    experiment = client.experiments.create(**settings)
    assert experiment.estimate.task_calls == estimate.task_calls
    experiment_id = experiment.experiment_id
    assert [e.experiment_id for e in client.experiments.iterate(name="bools")] == [experiment_id]
    renamed = client.experiments.update(experiment_id, description="nightly", schedule={"cron": "0 3 * * *"})
    assert renamed.description == "nightly"
    assert renamed.schedule is not None
    assert client.experiments.update(experiment_id, schedule=None).schedule is None

    run = client.experiments.start(experiment_id, idempotency_key="start-1")
    again = client.experiments.start(experiment_id, idempotency_key="start-1")
    assert again.run_id == run.run_id  # replayed, not a second run
    with pytest.raises(Conflict) as active:
        client.experiments.start(experiment_id)
    assert active.value.code == "run_active"
    assert [r.run_id for r in client.experiments.iterate_runs(experiment_id)] == [run.run_id]
    assert client.experiments.get_run(experiment_id, run.run_id).run_id == run.run_id
    client.experiments.cancel_run(experiment_id, run.run_id)
    ended = client.experiments.wait_run(experiment_id, run.run_id)
    assert ended.status == "cancelled"
    assert client.experiments.metrics(experiment_id).run_id == run.run_id
    assert client.experiments.get(experiment_id).last_run_id == run.run_id
    client.experiments.delete(experiment_id)
    with pytest.raises(NotFound):
        client.experiments.get(experiment_id)


def test_a_typed_error_for_each_class_of_problem(client: Client, cloud: LocalCloud, tenant: str) -> None:
    with pytest.raises(InvalidRequest) as bad:
        client.prompts.list(page_token="not-a-token")
    assert bad.value.status == 400
    with pytest.raises(NotFound) as missing:
        client.prompts.get("pr_missing")
    assert missing.value.code == "prompt_not_found"
    with Client(API_URL, transport=cloud) as anonymous, pytest.raises(AuthenticationFailed):
        anonymous.prompts.list()
    with Client(API_URL, token=cloud.token(tenant, "viewer"), transport=cloud) as viewer:
        with pytest.raises(PermissionDenied) as low:
            viewer.prompts.create(output_prompt="{input}")
        assert low.value.code == "role_too_low"
    client.prompts.create(output_prompt="{input}", idempotency_key="k-1")
    with pytest.raises(Unprocessable):
        client.prompts.create(output_prompt="other {input}", idempotency_key="k-1")

    with Client(API_URL, token=cloud.token(tenant), transport=cloud, retries=0) as once:
        cloud.fail_next("api", 429)
        with pytest.raises(RateLimited):
            once.prompts.list()
        cloud.fail_next("api", 500)
        with pytest.raises(ServerError):
            once.prompts.list()
        cloud.fail_next("api", Fault(kind="api", error=httpx.ConnectError("refused")))
        with pytest.raises(TransportError) as unreachable:
            once.prompts.list()
        assert unreachable.value.kind == "connect"
    # Values the API would refuse are refused before anything is sent (the API's own models).
    with pytest.raises(ValueError, match="placeholder"):
        client.prompts.create(output_prompt="no placeholders")


def test_a_retry_replays_the_create_with_the_same_key(client: Client, cloud: LocalCloud) -> None:
    # The first answer is lost (the prompt was created), the retry gets the recorded answer.
    cloud.fail_next("api", Fault(kind="api", status=503, after=True))
    created = client.prompts.create(name="once", output_prompt="{input}")
    posts = [r for r in cloud.sent("POST") if r.path == "/api/v1/prompts"]
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert [p.prompt_id for p in client.prompts.iterate(name="once")] == [created.prompt_id]

    cloud.fail_next("api", Fault(kind="api", status=502, after=True))
    job = client.batch.run(output_prompt="{q}", rows=[{"inputs": {"q": "x"}}], model="sim:default")
    job_posts = [r for r in cloud.sent("POST") if r.path == "/api/v1/inference/batch"]
    assert len({r.headers["idempotency-key"] for r in job_posts}) == 1
    assert cloud.jobs == [job.job_id, job.job_id]  # both answers name the one job: the retry was replayed


def test_api_key_is_exchanged_and_refreshed(cloud: LocalCloud, tenant: str) -> None:
    exchange = KeyExchange(cloud, {"pk_live_secret": (tenant, "editor")})
    with Client(API_URL, api_key="pk_live_secret", transport=exchange) as client:
        first = client.prompts.create(output_prompt="{input}")
        client.prompts.get(first.prompt_id)
        assert len(exchange.issued) == 1  # cached between calls
        cloud.tokens.pop(exchange.issued[0])  # revoked or expired at the gateway: 401
        assert client.prompts.get(first.prompt_id).prompt_id == first.prompt_id
        assert len(exchange.issued) == 2  # exchanged again once, then the call went through
        sent = [r for r in cloud.sent() if r.path.startswith("/api/v1/prompts")]
        assert all(r.headers["authorization"].startswith("Bearer tok-") for r in sent)
        assert "pk_live_secret" not in json.dumps([r.headers for r in sent])

    with (
        Client(API_URL, api_key="pk_wrong", transport=exchange) as wrong,
        pytest.raises(AuthenticationFailed) as bad,
    ):
        wrong.prompts.list()
    assert bad.value.code == "invalid_api_key"


def test_configured_from_the_environment(
    cloud: LocalCloud, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange = KeyExchange(cloud, {"pk_env": (tenant, "viewer")})
    monkeypatch.setenv("PROMPTOPT_API_URL", API_URL)
    monkeypatch.setenv("PROMPTOPT_API_KEY", "pk_env")
    with Client(transport=exchange) as client:
        assert isinstance(client.http.credentials, ApiKey)
        assert client.api_url == API_URL
        assert list(client.prompts.iterate()) == []
    monkeypatch.setenv("PROMPTOPT_TOKEN", cloud.token(tenant, "viewer"))
    with Client(transport=exchange) as client:  # a token wins over a key
        assert list(client.datasets.iterate()) == []
    assert len(exchange.issued) == 1
