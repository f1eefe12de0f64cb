"""POST /api/v1/inference/evaluate — a batch job whose answers are then scored (202)."""

import functions_framework
from flask import Request, Response

from promptopt.batch import jobs
from promptopt.batch.models import EvaluationCreate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    body = call.body(EvaluationCreate)
    job = jobs.create_job(principal=call.user, body=body, idempotency_key=call.idempotency_key)
    return Reply(job, status=202, headers={"Location": f"/api/v1/inference/batch/{job['job_id']}"})
