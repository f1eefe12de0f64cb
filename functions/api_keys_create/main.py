"""POST /api/v1/api-keys — create an API key; its secret is shown once (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import keys
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _create, source=__file__)


def _create(call: Call) -> Reply:
    wanted = keys.plain_new_key(call.raw_body)
    if wanted is None:  # anything but a plainly valid body: the model words the 400
        from promptopt.access.models import ApiKeyCreate

        body = call.body(ApiKeyCreate)
        wanted = keys.NewKey(body.name, body.role, body.expires_in_days)
    created = keys.create_key(principal=call.user, body=wanted)
    return Reply(created, status=201, headers={"Location": f"/api/v1/api-keys/{created['key_id']}"})
