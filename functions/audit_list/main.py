"""GET /api/v1/audit — the tenant's audit log (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.access import audit
from promptopt.http import Call, Reply, serve


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _list, source=__file__)


def _list(call: Call) -> Reply:
    # No query string: the defaults, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(audit.list_entries(principal=call.user, query=audit.ListDefaults()))
    from promptopt.access.models import AuditQuery

    return Reply(audit.list_entries(principal=call.user, query=call.query(AuditQuery)))
