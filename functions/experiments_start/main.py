"""POST /api/v1/experiments/{experiment_id}/start — start a run (202)."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import runs
from promptopt.experiments.models import RunStart
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _start, source=__file__)


def _start(call: Call) -> Reply:
    body = call.body(RunStart) if call.request.get_data() else None
    run = runs.start_run(
        principal=call.user,
        experiment_id=call.path["experiment_id"],
        body=body,
        idempotency_key=call.idempotency_key,
    )
    location = f"/api/v1/experiments/{run.experiment_id}/runs/{run.run_id}"
    return Reply(run, status=202, headers={"Location": location})
