"""DELETE /api/v1/experiments/{experiment_id} — remove an experiment and its runs (admin; 409 if active)."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import catalog as experiments
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _delete, source=__file__)


def _delete(call: Call) -> Reply:
    experiments.delete_experiment(principal=call.user, experiment_id=call.path["experiment_id"])
    return Reply(None, status=204)
