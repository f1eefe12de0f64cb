"""GET /api/v1/experiments/{experiment_id}/runs — the experiment's runs, newest first."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import run_view
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    experiment_id = call.path["experiment_id"]
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        defaults = run_view.PageDefaults()
        return Reply(run_view.list_runs(principal=call.user, experiment_id=experiment_id, query=defaults))
    from promptopt.http.models import PageQuery

    query = call.query(PageQuery)
    return Reply(run_view.list_runs(principal=call.user, experiment_id=experiment_id, query=query))
