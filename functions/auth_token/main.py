"""POST /api/v1/auth/token — exchange an API key for a short-lived bearer token (public)."""

import functions_framework
from flask import Request, Response

from promptopt.access import exchange
from promptopt.access.models import TokenRequest
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _exchange, source=__file__)


def _exchange(call: Call) -> Reply:
    client = exchange.client_address(call.request.headers.get("X-Forwarded-For"), call.request.remote_addr)
    return Reply(exchange.exchange(body=call.body(TokenRequest), client=client))
