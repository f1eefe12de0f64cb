"""GET /api/v1/spending-cap — the cap, this month's spend and what is left."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.spend import caps


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _get, source=__file__)


def _get(call: Call) -> Reply:
    return Reply(caps.view(call.user.tenant))
