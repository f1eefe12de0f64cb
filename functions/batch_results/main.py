"""GET /api/v1/inference/batch/{job_id}/results — per-row results, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.batch import results
from promptopt.batch.models import ResultsQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    page = results.list_results(
        principal=call.user, job_id=call.path["job_id"], query=call.query(ResultsQuery)
    )
    return Reply(page)
