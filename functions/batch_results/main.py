"""GET /api/v1/inference/batch/{job_id}/results — per-row results, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.batch import results
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    job_id = call.path["job_id"]
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        defaults = results.ResultsDefaults()
        return Reply(results.list_results(principal=call.user, job_id=job_id, query=defaults))
    from promptopt.batch.read_models import ResultsQuery

    return Reply(results.list_results(principal=call.user, job_id=job_id, query=call.query(ResultsQuery)))
