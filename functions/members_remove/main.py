"""DELETE /api/v1/members/{uid} — remove a member (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import members
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _remove, source=__file__)


def _remove(call: Call) -> Reply:
    members.remove(principal=call.user, uid=call.path["uid"])
    return Reply(None, status=204)
