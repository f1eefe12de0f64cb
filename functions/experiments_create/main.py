"""POST /api/v1/experiments — create an experiment, checked against what exists (201, with its estimate)."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import service as experiments
from promptopt.experiments.models import ExperimentCreate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    created = experiments.create_experiment(
        principal=call.user, body=call.body(ExperimentCreate), idempotency_key=call.idempotency_key
    )
    location = f"/api/v1/experiments/{created['experiment_id']}"
    return Reply(created, status=201, headers={"Location": location})
