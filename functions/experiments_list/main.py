"""GET /api/v1/experiments — the tenant's experiments, newest first, paginated."""

import functions_framework
from flask import Request, Response

from promptopt.experiments import catalog
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(catalog.list_experiments(principal=call.user, query=catalog.ListDefaults()))
    from promptopt.experiments.models import ExperimentListQuery

    return Reply(catalog.list_experiments(principal=call.user, query=call.query(ExperimentListQuery)))
