"""POST /api/v1/inference/batch/{job_id}/cancel — stop a job that has not finished."""

import functions_framework
from flask import Request, Response

from promptopt.batch import lookup
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _cancel, source=__file__)


def _cancel(call: Call) -> Reply:
    return Reply(lookup.cancel_job(principal=call.user, job_id=call.path["job_id"]))
