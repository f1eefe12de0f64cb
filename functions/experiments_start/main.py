"""POST /api/v1/experiments/{experiment_id}/start — start a run (202)."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import start
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _start, source=__file__)


def _start(call: Call) -> Reply:
    budget = None
    if call.request.get_data():  # only a body needs its model (no pydantic on a plain start)
        from promptopt.experiments.models import RunStart

        body = call.body(RunStart)
        budget = body.budget.model_dump() if body.budget is not None else None
    run = start.start_run(
        principal=call.user,
        experiment_id=call.path["experiment_id"],
        budget=budget,
        idempotency_key=call.idempotency_key,
    )
    location = f"/api/v1/experiments/{run['experiment_id']}/runs/{run['run_id']}"
    return Reply(run, status=202, headers={"Location": location})
