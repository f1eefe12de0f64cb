"""DELETE /api/v1/api-keys/{key_id} — revoke an API key (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import keys
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _revoke, source=__file__)


def _revoke(call: Call) -> Reply:
    keys.revoke_key(principal=call.user, key_id=call.path["key_id"])
    return Reply(None, status=204)
