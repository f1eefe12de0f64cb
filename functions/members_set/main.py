"""PUT /api/v1/members/{uid} — set a member's role (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import members
from promptopt.access.models import MemberRole
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _set, source=__file__)


def _set(call: Call) -> Reply:
    return Reply(members.set_role(principal=call.user, uid=call.path["uid"], body=call.body(MemberRole)))
