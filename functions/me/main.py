"""GET /api/v1/me — subject, tenant, role and credential of the caller."""

import functions_framework
from flask import Request, Response

from promptopt.access.models import Me
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _me, source=__file__)


def _me(call: Call) -> Reply:
    user = call.user
    return Reply(
        Me(
            subject=user.subject,
            tenant=user.tenant,
            role=user.role.name,  # type: ignore[arg-type]
            credential=user.credential,
            key_id=user.key_id,
        )
    )
