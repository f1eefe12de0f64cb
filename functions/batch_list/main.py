"""GET /api/v1/inference/batch — a tenant's jobs, newest first."""

import functions_framework
from flask import Request, Response

from promptopt.batch.listing import ListDefaults, list_jobs
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(list_jobs(principal=call.user, query=ListDefaults()))
    from promptopt.batch.read_models import BatchListQuery

    return Reply(list_jobs(principal=call.user, query=call.query(BatchListQuery)))
