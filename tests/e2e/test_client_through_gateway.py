"""`promptopt.Client` as a user's program runs it: over HTTP, through the local gateway, on the stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from promptopt.client import AuthenticationFailed, Client, NotFound
from promptopt.client import datasets as client_datasets
from promptopt.local.stack import Stack

pytestmark = pytest.mark.e2e

BOOLEANS = Path(__file__).parents[2] / "shared" / "datasets" / "bbh" / "boolean_expressions.jsonl"


def test_the_client_through_the_gateway(
    stack: Stack, token_for: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client.dev("client-e2e", "admin", api_url=stack.gateway_url) as client:  # minted dev tokens
        assert client.health().status == "ok"
        prompt = client.prompts.create(name="booleans", output_prompt="{input}\nAnswer with True or False.")
        client.prompts.set_label(prompt.prompt_id, "production", version=1)
        for _ in range(2):
            client.prompts.create(name="booleans", output_prompt="{input}")
        assert len(list(client.prompts.iterate(name="booleans", page_size=1))) == 3

        # Through the signed URL and the storage stand-in, then ingested by the trigger bridge.
        monkeypatch.setattr(client_datasets, "INLINE_MAX_BYTES", 10)
        path = tmp_path / "booleans.jsonl"
        path.write_text("".join(BOOLEANS.read_text(encoding="utf-8").splitlines(keepends=True)[:40]))
        dataset = client.datasets.create(
            path, name="booleans", inputs=["input"], reference="target", wait=True, timeout_s=120
        )
        assert dataset.upload is not None
        assert dataset.version.status == "ready"
        dataset_id = dataset.dataset.dataset_id

        gate = client.gate(
            prompt_id=prompt.prompt_id, version=1, dataset_id=dataset_id, metrics=["exact_match"],
            model="sim:default", timeout_s=180,
        )  # fmt: skip
        assert gate.passed, gate.failures
        assert gate.candidate_job is not None
        scores = client.batch.scores(gate.candidate_job.job_id)
        assert scores.metrics[0].name == "exact_match"
        assert len(scores.metrics[0].rows) == gate.metrics[0].lift.n

        with pytest.raises(NotFound) as missing:
            client.prompts.get("pr_missing")
        assert missing.value.code == "prompt_not_found"

    with Client(stack.gateway_url, token=token_for("client-e2e", "viewer")) as viewer:
        assert [p.prompt_id for p in viewer.prompts.iterate(label="production")] == [prompt.prompt_id]
    with Client(stack.gateway_url) as anonymous, pytest.raises(AuthenticationFailed) as refused:
        anonymous.prompts.list()
    assert refused.value.status == 401
    assert json.dumps(refused.value.problem)  # a problem document from the gateway
