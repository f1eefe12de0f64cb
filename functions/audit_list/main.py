"""GET /api/v1/audit — the tenant's audit log (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import audit
from promptopt.access.models import AuditQuery
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    return Reply(audit.list_entries(principal=call.user, query=call.query(AuditQuery)))
