"""POST /api/v1/inference/batch — start a batch inference job (202; the rows run as Cloud Tasks)."""

import functions_framework
from flask import Request, Response

from promptopt.batch import jobs
from promptopt.batch.models import BatchCreate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    job = jobs.create_job(
        principal=call.user, body=call.body(BatchCreate), idempotency_key=call.idempotency_key
    )
    return Reply(job, status=202, headers={"Location": f"/api/v1/inference/batch/{job['job_id']}"})
