"""GET /api/v1/api-keys — the tenant's API keys (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import keys
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    return Reply(keys.list_keys(principal=call.user))
