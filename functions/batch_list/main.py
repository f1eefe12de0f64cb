"""GET /api/v1/inference/batch — a tenant's jobs, newest first."""

import functions_framework
from flask import Request, Response

from promptopt.batch.listing import list_jobs
from promptopt.batch.models import BatchListQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    return Reply(list_jobs(principal=call.user, query=call.query(BatchListQuery)))
