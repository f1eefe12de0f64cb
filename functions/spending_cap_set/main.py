"""PUT /api/v1/spending-cap — set or remove the monthly spending cap (admin)."""

import functions_framework
from flask import Request, Response

from promptopt.http import Call, Reply, serve
from promptopt.spend import caps
from promptopt.spend.models import SpendingCapSet


@functions_framework.http
def handle(request: Request) -> Response:
    return serve(request, _set, source=__file__)


def _set(call: Call) -> Reply:
    return Reply(caps.set_cap(principal=call.user, body=call.body(SpendingCapSet)))
