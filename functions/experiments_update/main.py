"""PATCH /api/v1/experiments/{experiment_id} — rename, describe, schedule or pause an experiment."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import service as experiments
from promptopt.experiments.models import ExperimentUpdate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _update, source=__file__)


def _update(call: Call) -> Reply:
    updated = experiments.update_experiment(
        principal=call.user, experiment_id=call.path["experiment_id"], body=call.body(ExperimentUpdate)
    )
    return Reply(updated)
