"""POST /api/v1/auth/token — exchange an API key for a short-lived bearer token (public)."""

import functions_framework
from flask import Request, Response

from promptopt.access import exchange
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _exchange, source=__file__)


def _exchange(call: Call) -> Reply:
    client = exchange.client_address(call.request.headers.get("X-Forwarded-For"), call.request.remote_addr)
    api_key = exchange.plain_key(call.raw_body)
    if api_key is None:  # anything but a plainly valid body: the model words the 400
        from promptopt.access.models import TokenRequest

        api_key = call.body(TokenRequest).api_key
    return Reply(exchange.exchange(api_key=api_key, client=client))
