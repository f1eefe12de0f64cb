"""GET /api/v1/usage — calls, tokens and cost by day, model and job or experiment."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.usage import report


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _usage, source=__file__)


def _usage(call: Call) -> Reply:
    # No query string: this month so far, without the query model (no pydantic on the cold start).
    if not call.request.args:
        return Reply(report.usage_report(principal=call.user, query=report.UsageDefaults()))
    from promptopt.usage.models import UsageQuery

    return Reply(report.usage_report(principal=call.user, query=call.query(UsageQuery)))
