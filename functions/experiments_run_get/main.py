"""GET /api/v1/experiments/{experiment_id}/runs/{run_id} — one run with its recent events."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import run_view
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    return Reply(
        run_view.get_run(
            principal=call.user, experiment_id=call.path["experiment_id"], run_id=call.path["run_id"]
        )
    )
