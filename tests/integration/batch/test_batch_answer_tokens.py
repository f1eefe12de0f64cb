"""Each row records what its answer cost, whether it was called for or came from the cache."""

from __future__ import annotations

import pytest

from promptopt.experiments import jobs as run_jobs
from tests.integration.batch.conftest import Batch
from tests.integration.batch.test_batch_outbox import evaluation_body

pytestmark = pytest.mark.integration


def test_tokens_per_row_are_the_same_when_every_answer_is_cached(batch: Batch) -> None:
    read = []
    for _ in range(2):  # the second job's rows are all answered from the response cache
        job_id = batch.started(evaluation_body(), path="/api/v1/inference/evaluate")["job_id"]
        batch.run(job_id)
        found = run_jobs.state(batch.tenant, job_id)
        assert found is not None
        read.append(run_jobs.read_result(batch.tenant, job_id, found[1], "numeric", 12))
    fresh, cached = read
    assert fresh.usage["cache_hits"] == 0
    assert fresh.usage["input_tokens"] > 0
    assert cached.usage["cache_hits"] == 12
    assert cached.usage["input_tokens"] == 0
    assert fresh.tokens_per_row is not None
    assert fresh.tokens_per_row > 0
    assert cached.tokens_per_row == fresh.tokens_per_row
