"""POST /api/v1/experiments/{experiment_id}/runs/{run_id}/cancel — stop a run now."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import run_view
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _cancel, source=__file__)


def _cancel(call: Call) -> Reply:
    experiment_id, run_id = call.path["experiment_id"], call.path["run_id"]
    return Reply(run_view.cancel_run(principal=call.user, experiment_id=experiment_id, run_id=run_id))
