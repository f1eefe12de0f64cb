"""POST /api/v1/experiments/estimate — upper bounds of one run's calls, tokens and cost; stores nothing."""

import functions_framework
from flask import Request, Response

from promptopt.experiments.estimate import estimate
from promptopt.experiments.models import ExperimentCreate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _estimate, source=__file__)


def _estimate(call: Call) -> Reply:
    return Reply(estimate(principal=call.user, body=call.body(ExperimentCreate)))
