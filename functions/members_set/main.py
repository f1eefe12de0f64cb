"""PUT /api/v1/members/{uid} — set a member's role (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import members
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _set, source=__file__)


def _set(call: Call) -> Reply:
    wanted = members.plain_member_role(call.raw_body)
    if wanted is None:  # anything but a plainly valid body: the model words the 400
        from promptopt.access.models import MemberRole

        body = call.body(MemberRole)
        wanted = (body.role, body.email)
    role, email = wanted
    return Reply(members.set_role(principal=call.user, uid=call.path["uid"], role=role, email=email))
