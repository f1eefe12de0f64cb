"""GET /api/v1/experiments — the tenant's experiments, newest first, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import service as experiments
from promptopt.experiments.models import ExperimentListQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    return Reply(experiments.list_experiments(principal=call.user, query=call.query(ExperimentListQuery)))
