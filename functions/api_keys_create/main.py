"""POST /api/v1/api-keys — create an API key; its secret is shown once (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import keys
from promptopt.access.models import ApiKeyCreate
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    created = keys.create_key(principal=call.user, body=call.body(ApiKeyCreate))
    return Reply(created, status=201, headers={"Location": f"/api/v1/api-keys/{created.key_id}"})
