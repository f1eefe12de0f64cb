"""GET /api/v1/models — the models this deployment serves, with prices and the default."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.usage import catalog


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _models, source=__file__)


def _models(call: Call) -> Reply:
    return Reply(catalog.catalog())
