"""GET /api/v1/experiments/{experiment_id}/metrics — the latest (or a named) run, iteration by iteration."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import run_view
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _metrics, source=__file__)


def _metrics(call: Call) -> Reply:
    experiment_id = call.path["experiment_id"]
    # No query string: the latest run, without the query model (no pydantic on the cold start).
    if not call.request.args:
        defaults = run_view.MetricsDefaults()
        return Reply(run_view.metrics(principal=call.user, experiment_id=experiment_id, query=defaults))
    from promptopt.experiments.models import MetricsQuery

    query = call.query(MetricsQuery)
    return Reply(run_view.metrics(principal=call.user, experiment_id=experiment_id, query=query))
