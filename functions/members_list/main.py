"""GET /api/v1/members — the tenant's members (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import members
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    return Reply(members.list_members(principal=call.user))
