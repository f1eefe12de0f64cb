"""GET /api/v1/experiments/{experiment_id}/metrics — the latest (or a named) run, iteration by iteration."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import runs
from promptopt.experiments.models import MetricsQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _metrics, source=__file__)


def _metrics(call: Call) -> Reply:
    query = call.query(MetricsQuery)
    return Reply(runs.metrics(principal=call.user, experiment_id=call.path["experiment_id"], query=query))
