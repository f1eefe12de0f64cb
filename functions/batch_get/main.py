"""GET /api/v1/inference/batch/{job_id} — a job's status, progress, usage and metrics."""

import functions_framework
from flask import Request, Response

from promptopt.batch import lookup
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    return Reply(lookup.get_job(principal=call.user, job_id=call.path["job_id"]))
