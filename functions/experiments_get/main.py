"""GET /api/v1/experiments/{experiment_id} — one experiment with what its runs did."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import catalog as experiments
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    return Reply(experiments.get_experiment(principal=call.user, experiment_id=call.path["experiment_id"]))
