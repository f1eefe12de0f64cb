"""GET /api/v1/experiments/{experiment_id}/runs — the experiment's runs, newest first."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import runs
from promptopt.http import Call, Reply, serve
from promptopt.http.models import PageQuery


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    page = runs.list_runs(
        principal=call.user, experiment_id=call.path["experiment_id"], query=call.query(PageQuery)
    )
    return Reply(page)
